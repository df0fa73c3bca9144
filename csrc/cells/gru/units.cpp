// GruUnits (units.h) compiled for every ISA (primitives/simd/every_isa_inl.h).
#include "cells/gru/units.h"

#define PYLSTM_ISA_KIND GruUnits
#define PYLSTM_ISA_BODY "cells/gru/units_inl.h"
#include "primitives/simd/every_isa_inl.h"
