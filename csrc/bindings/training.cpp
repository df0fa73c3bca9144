#include "bindings/checks.h"
#include "bindings/parts.h"

namespace pylstm {

void bind_training(py::module_& m) { (void)m; }

}  // namespace pylstm
