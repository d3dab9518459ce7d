// Scratch buffers that grow to the largest call and are then reused (no allocation per call once
// warm), shared by the runtime's layers.
#pragma once
#include <cstdint>
#include <vector>

namespace bitmaps {

template <typename T, typename Allocator>
T* grow(std::vector<T, Allocator>& buffer, int64_t size) {
  if (static_cast<int64_t>(buffer.size()) < size) buffer.resize(static_cast<size_t>(size));
  return buffer.data();
}

}  // namespace bitmaps
