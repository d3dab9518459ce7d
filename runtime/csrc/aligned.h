// Vectors whose data start on a 64-byte cache line. std::vector's allocations start 16 bytes
// into a line (malloc's alignment), so every 512-bit load of a weight layout read in order spans
// two lines, and every second 256-bit one: the derived weight layouts and the kernels' scratch
// use these instead.
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace bitmaps {

constexpr std::size_t kCacheLine = 64;

template <typename T>
struct LineAllocator {
  using value_type = T;
  LineAllocator() = default;
  template <typename U>
  LineAllocator(const LineAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kCacheLine))); }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(kCacheLine)); }
  template <typename U>
  bool operator==(const LineAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const LineAllocator<U>&) const { return false; }
};

template <typename T>
using aligned_vector = std::vector<T, LineAllocator<T>>;

}  // namespace bitmaps
