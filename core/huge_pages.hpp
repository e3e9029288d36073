// Transparent huge pages for large buffers that are about to be filled once (a file's text, the
// entries parsed from it, a dense coupling matrix). Where the kernel gives huge pages only on
// request (transparent_hugepage = madvise, the common default), each 4 KiB page of a fresh
// buffer otherwise costs a page fault on first touch: about a third of the time of reading a
// 25 MB QUBO file went to those faults. A hint only: nothing changes where it is not supported.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace qprune::detail {

/// Asks for huge pages on the whole 2 MiB pages inside [data, data + bytes), before the first
/// write to them. Buffers below 4 MiB are left alone.
inline void advise_huge_pages(void* data, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  if (data == nullptr || bytes < 2 * kHuge) return;
  // Offsets from the buffer's own pointer (not an integer turned back into a pointer), so the
  // compiler keeps the pointer's provenance.
  const auto address = reinterpret_cast<std::uintptr_t>(data);
  const std::size_t head = static_cast<std::size_t>((kHuge - address % kHuge) % kHuge);
  const std::size_t tail = static_cast<std::size_t>((address + bytes) % kHuge);
  if (bytes > head + tail) {
    (void)::madvise(static_cast<char*>(data) + head, bytes - head - tail, MADV_HUGEPAGE);
  }
#else
  (void)data;
  (void)bytes;
#endif
}

}  // namespace qprune::detail
