// PLACEHOLDER main.
#include "qprune/qprune.hpp"
int main() { return 0; }
