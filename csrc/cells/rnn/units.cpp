// RnnUnits (units.h) compiled for every ISA (primitives/simd/every_isa_inl.h).
#include "cells/rnn/units.h"

#define PYLSTM_ISA_KIND RnnUnits
#define PYLSTM_ISA_BODY "cells/rnn/units_inl.h"
#include "primitives/simd/every_isa_inl.h"
