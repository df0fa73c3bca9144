// The threading of the C++ core, in three parts: threads.h (how many threads a kernel uses, and its parallel region),
// work_rounds.h (the time loops' scheduler) and busy_machine.h (falling back to one thread on a busy machine).
#pragma once
#include "primitives/busy_machine.h"
#include "primitives/threads.h"
#include "primitives/work_rounds.h"
