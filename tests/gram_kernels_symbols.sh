#!/usr/bin/env bash
# The AVX2 / AVX-512 kernel units (core/gram_kernels_avx*.cpp) must define no symbol the linker
# could merge with one of the baseline code: every global or weak symbol they define is either in
# their renamed Eigen (qprune_eigen_avx2 / qprune_eigen_avx512) or their own kernels() function.
# A std:: or Eigen:: inline function compiled there for AVX2 and picked by the linker for the whole
# program would crash a CPU without it. Usage: gram_kernels_symbols.sh LIBQPRUNE_CORE.a
set -u
lib=$1
command -v nm >/dev/null || { echo "skipped: no nm"; exit 77; }
failures=0
for member in gram_kernels_avx2.cpp.o gram_kernels_avx512.cpp.o; do
  # nm on the archive prints "member:" before each member's symbols.
  symbols=$(nm -C --defined-only "$lib" | awk -v m="$member:" '$0 == m {on = 1; next} /\.o:$/ {on = 0} on')
  if [ -z "$symbols" ]; then
    echo "FAIL: $member not found in $lib"
    failures=$((failures + 1))
    continue
  fi
  leaks=$(echo "$symbols" | awk '$2 ~ /^[A-TV-Z]$/' | grep -v -E 'qprune_eigen_avx(2|512)|qprune::detail::avx(2|512)::kernels\(\)|DW\.ref\.__gxx_personality_v0')
  if [ -n "$leaks" ]; then
    echo "FAIL: $member defines symbols shared with other units:"
    echo "$leaks" | head -20
    failures=$((failures + 1))
  else
    echo "ok: $member ($(echo "$symbols" | awk '$2 ~ /^[WV]$/' | wc -l) weak symbols, all renamed)"
  fi
done
exit $((failures > 0))
