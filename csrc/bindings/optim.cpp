#include "bindings/checks.h"
#include "bindings/parts.h"

namespace pylstm {

void bind_optimizers(py::module_& m) { (void)m; }

}  // namespace pylstm
