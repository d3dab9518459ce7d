// Which kernel table runs: the best one this CPU supports, unless set_isa() chose another.
#pragma once
#include <string>
#include <vector>

#include "kernels.h"

namespace bitmaps {

std::vector<const KernelTable*> available_kernels();  // best last
const KernelTable& active_kernels();
bool set_active_kernels(const std::string& isa);  // false if not available here

}  // namespace bitmaps
