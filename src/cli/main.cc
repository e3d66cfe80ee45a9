// qforge CLI entry point (placeholder until the CLI work lands).
#include <cstdio>
int main() { std::puts("qforge"); return 0; }
