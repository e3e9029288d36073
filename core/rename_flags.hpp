// Test seam of core/atomic_output.cpp: lets the unit tests run AtomicFolder's path for file
// systems without renameat2 flags (RENAME_NOREPLACE, RENAME_EXCHANGE: overlay and network file
// systems, some sandboxes), which the file systems the tests run on usually do have.
#pragma once

namespace qprune::detail {

/// Off: every renameat2 call with flags fails with EINVAL, as where they are unsupported.
void use_rename_flags(bool on);

}  // namespace qprune::detail
