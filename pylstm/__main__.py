"""Command line: `python -m pylstm demo`."""
import argparse

from . import demo


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pylstm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser("demo", help=demo.__doc__.splitlines()[0])
    run_demo.add_argument("--seed", type=int, default=0, help="random seed of the inputs and weights (default 0)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo.run(seed=args.seed)


if __name__ == "__main__":
    main()
