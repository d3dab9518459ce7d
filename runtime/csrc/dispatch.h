// Which kernel table runs: the best one this CPU supports, unless set_isa() chose another.
#pragma once
#include <string>
#include <vector>

#include "kernels.h"

namespace bitmaps {

std::vector<const KernelTable*> available_kernels();  // scalar first, then by instruction set
const KernelTable* default_kernels();  // what runs unless set_active_kernels() chose another
const KernelTable& active_kernels();
bool set_active_kernels(const std::string& isa);  // false if not available here

}  // namespace bitmaps
