# 3 values expected
0 1
