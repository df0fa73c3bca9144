"""Command line: `python -m pylstm demo`, `python -m pylstm train-char FILE`, `python -m pylstm sample CHECKPOINT`.

Errors in what the user gives (a missing or empty file, a checkpoint that is no character model) are one line on
stderr and exit status 2, not a traceback.
"""
import argparse
import math
import os
import sys


from . import demo

CELLS = ("lstm", "gru", "rnn")


class UsageError(Exception):
    """A problem with the command's input, shown as one line."""


def _read_text(path):
    try:
        with open(path, encoding="utf-8-sig") as f:  # (a byte order mark is no character of the text)
            text = f.read()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a text file") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror})") from None
    if not text:
        raise UsageError(f"{path}: the file is empty")
    return text


def char_model(vocab_size, *, cell, embedding, hidden, layers, dropout, seed):
    """The character model that train-char builds: Embedding -> LSTM/GRU/RNN layers -> Linear."""
    import pylstm
    layer = {"lstm": pylstm.LSTM, "gru": pylstm.GRU, "rnn": pylstm.RNN}[cell]
    return pylstm.Sequential(pylstm.Embedding(vocab_size, embedding, seed=seed),
                             layer(embedding, hidden, layers, dropout=dropout, seed=seed + 1),
                             pylstm.Linear(hidden, vocab_size, seed=seed + 2))


def train_char(args):
    import pylstm
    from pylstm.text import Vocab, batchify
    text = _read_text(args.file)
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    n_val = int(len(ids) * args.val_fraction)
    train_ids, val_ids = ids[:len(ids) - n_val], ids[len(ids) - n_val:]
    if len(train_ids) < 2 * args.batch_size:
        raise UsageError(f"{args.file}: {len(train_ids)} characters to train on ({len(text)} in all, {n_val} kept "
                         f"for validation by --val-fraction {args.val_fraction}) are too few for --batch-size "
                         f"{args.batch_size} (each of the {args.batch_size} streams needs at least 2)")
    data = batchify(train_ids, args.batch_size)
    val_data = batchify(val_ids, min(args.batch_size, len(val_ids) // 2)) if len(val_ids) >= 2 else None
    model = char_model(len(vocab), cell=args.cell, embedding=args.embedding, hidden=args.hidden, layers=args.layers,
                       dropout=args.dropout, seed=args.seed)
    optimizer = pylstm.optim.Adam(model, lr=args.lr)
    print(f"{args.file}: {len(text):,} characters, a vocabulary of {len(vocab)}; training {args.cell.upper()} "
          f"{args.layers} x {args.hidden} on {data.shape[1]} streams of {data.shape[0]:,} steps, chunks of "
          f"{args.bptt}; checkpoints to {args.out}", flush=True)
    try:
        history = pylstm.fit(model, data, pylstm.losses.cross_entropy, optimizer, epochs=args.epochs,
                             bptt=args.bptt, clip=args.clip, val_data=val_data, checkpoint=args.out,
                             resume=True if args.resume else None, vocab=vocab, progress=True)
    except ValueError as exc:  # fit checks its checkpoint path and what it resumes from before training
        for start, option in (("checkpoint: ", "--out"), ("resume=", "--resume")):
            if str(exc).startswith(start):
                raise UsageError(f"{option}: {exc}") from None
        raise
    if history.stopped == "interrupted":
        return 130
    if args.sample > 0:
        prompt = text[0]
        print(f"\nsample (prompt {prompt!r}):\n{prompt}"
              f"{pylstm.sample(model, vocab, prompt, args.sample, temperature=0.8, seed=args.seed)}")
    return 0


def load_char_model(path):
    """A checkpoint of a character model -> (model, vocab), or a UsageError saying why not."""
    from pylstm import checkpoint
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    try:
        saved = checkpoint.read(path)
    except ValueError as exc:
        raise UsageError(str(exc).replace("\n", " ")) from None
    if saved.vocab is None:
        raise UsageError(f"{path}: a {type(saved.module).__name__} without a vocabulary, not a character model "
                         f"(train one with `python -m pylstm train-char FILE`)")
    return saved.module, saved.vocab


def sample_command(args):
    import pylstm
    model, vocab = load_char_model(args.checkpoint)
    prompt = args.prompt if args.prompt is not None else vocab.chars[0]
    unknown = sorted({c for c in prompt if c not in vocab.chars})
    if unknown:
        raise UsageError(f"--prompt: characters not in the model's vocabulary: {''.join(unknown)!r}")
    try:
        text = pylstm.sample(model, vocab, prompt, args.n, temperature=args.temperature, top_k=args.top_k,
                             seed=args.seed)
    except (TypeError, ValueError) as exc:  # e.g. a checkpoint with a vocabulary of a model of no character ids
        raise UsageError(f"{args.checkpoint}: {exc}") from None
    print(prompt + text)
    return 0


def _positive(kind):
    def parse(value):
        try:
            v = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {'number' if kind is float else 'whole number'}, got "
                                             f"{value!r}") from None
        if not 0 < v < math.inf:
            raise argparse.ArgumentTypeError(f"expected a finite value > 0, got {value!r}")
        return v
    return parse


def _seed(value):
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value!r}")
    return v


def _writable_directory(path):
    """Whether `path` is, or could be made as, a directory that this process may write to: checked before a run
    that writes there at its end."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return os.path.isdir(path) and os.access(path, os.W_OK)


def _with_help(parser):
    """argparse's own -h text is no sentence; this one is."""
    parser.add_argument("-h", "--help", action="help", help="Show this help and exit.")
    return parser


def parser():
    p = _with_help(argparse.ArgumentParser(
        prog="python -m pylstm", add_help=False,
        description="Run the demo of gated recurrent networks, train a character-level language model on a text "
                    "file, or generate text from such a model. Each command has its own --help."))
    commands = p.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    run_demo = _with_help(commands.add_parser(
        "demo", add_help=False, description=demo.__doc__,
        help="Run the experiments behind gated recurrent networks, training them now (about a minute and a half on "
             "2 cores)."))
    size = run_demo.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="Run tiny versions, in seconds; their numbers show little.")
    size.add_argument("--full", action="store_true", help="Run longer and larger versions.")
    run_demo.add_argument("--only", choices=demo.NAMES, help="Run this experiment only.")
    run_demo.add_argument("--seed", type=_seed, default=0, help="The first of the seeds (default 0).")
    run_demo.add_argument("--plots", default="demo-plots",
                          help="The directory for the PNG plots, written when matplotlib is installed "
                               "(default demo-plots).")
    run_demo.add_argument("--no-plots", action="store_true", help="Write no plots.")

    t = _with_help(commands.add_parser(
        "train-char", add_help=False, help="Train a character-level language model on a text file.",
        description="Train a character-level language model (Embedding, recurrent layers, Linear; Adam; truncated "
                    "backpropagation through time) on a UTF-8 text file, writing a checkpoint each epoch, then "
                    "print a sample."))
    t.add_argument("file", help="The UTF-8 text to learn.")
    t.add_argument("--cell", choices=CELLS, default="lstm", help="The recurrent cell (default lstm).")
    t.add_argument("--hidden", type=_positive(int), default=256,
                   help="The number of hidden units per layer (default 256).")
    t.add_argument("--layers", type=_positive(int), default=2, help="The number of recurrent layers (default 2).")
    t.add_argument("--embedding", type=_positive(int), default=64,
                   help="The width of the character embedding (default 64).")
    t.add_argument("--dropout", type=float, default=0.0,
                   help="The dropout probability between recurrent layers (default 0).")
    t.add_argument("--epochs", type=_positive(int), default=10,
                   help="The number of passes over the text (default 10).")
    t.add_argument("--batch-size", type=_positive(int), default=32,
                   help="The number of parallel streams the text is cut into (default 32).")
    t.add_argument("--bptt", type=_positive(int), default=100,
                   help="The number of steps per chunk of backpropagation through time (default 100).")
    t.add_argument("--lr", type=_positive(float), default=2e-3, help="Adam's learning rate (default 2e-3).")
    t.add_argument("--clip", type=_positive(float), default=5.0,
                   help="The largest gradient norm; larger gradients are scaled down to it (default 5).")
    t.add_argument("--val-fraction", type=float, default=0.05,
                   help="The fraction at the end of the text kept for validation (default 0.05).")
    t.add_argument("--out", default="model.npz", help="The checkpoint's path (default model.npz).")
    t.add_argument("--resume", action="store_true", help="Continue from the checkpoint at --out if it exists (with "
                   "its optimizer's state and learning rate: --lr is for a new run).")
    t.add_argument("--seed", type=_seed, default=0, help="The random seed of the weights (default 0).")
    t.add_argument("--sample", type=int, default=200,
                   help="The number of characters to sample after training (default 200).")

    s = _with_help(commands.add_parser(
        "sample", add_help=False, help="Generate text from a checkpoint written by train-char.",
        description="Generate text from a character model written by train-char (or by pylstm.fit with a "
                    "vocabulary)."))
    s.add_argument("checkpoint", help="The checkpoint (.npz).")
    s.add_argument("--prompt", default=None,
                   help="The text to start from (default: the vocabulary's first character).")
    s.add_argument("-n", type=int, default=500, help="The number of characters to generate (default 500).")
    s.add_argument("--temperature", type=_positive(float), default=1.0,
                   help="The softmax temperature: below 1 sharper, above 1 more varied (default 1).")
    s.add_argument("--top-k", type=_positive(int), default=None,
                   help="Draw from the k most likely characters only (default: from all).")
    s.add_argument("--seed", type=_seed, default=None, help="The random seed of the draws (default: fresh).")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        if args.command == "demo":
            if not args.no_plots and not _writable_directory(args.plots):
                raise UsageError(f"--plots: {args.plots} is not a directory that can be written (or made)")
            preset = "quick" if args.quick else "full" if args.full else "default"
            demo.run(preset, only=args.only, seed=args.seed, plots=None if args.no_plots else args.plots)
            return 0
        if args.command == "train-char":
            if not 0.0 <= args.val_fraction < 1.0:
                raise UsageError(f"--val-fraction: expected a number in [0, 1), got {args.val_fraction}")
            if not 0.0 <= args.dropout <= 1.0:
                raise UsageError(f"--dropout: expected a probability in [0, 1], got {args.dropout}")
            return train_char(args)
        if args.n < 0:
            raise UsageError(f"-n: expected a number >= 0, got {args.n}")
        return sample_command(args)
    except UsageError as exc:
        print(f"python -m pylstm {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
