// LstmUnits (units.h) compiled for every ISA (primitives/simd/every_isa_inl.h).
#include "cells/lstm/units.h"

#define PYLSTM_ISA_KIND LstmUnits
#define PYLSTM_ISA_BODY "cells/lstm/units_inl.h"
#include "primitives/simd/every_isa_inl.h"
