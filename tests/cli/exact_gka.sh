# `qprune solve --solver exact` proves the published optimum of the GKA instances with n <= 30
# (values: Wiegele, Biq Mac Library 2007, Tables 2-3; ../shared/benchmarks/known_values.csv).
source "$(dirname "$0")/common.bash" "$@"
for case in gka1b:-133 gka2b:-121 gka6a:-3980 gka7a:-4541; do
  name=${case%%:*}; value=${case#*:}
  out=$("$QPRUNE" solve "$DATA/instances/$name.sparse" --solver exact)
  expect_line "$out" "Status" "optimal"
  expect_line "$out" "Best energy" "$value"
done
