// sluicectl: see ctl/sluicectl.h.
#include <iostream>

#include "ctl/sluicectl.h"

int main(int argc, char** argv) { return sluice::RunSluicectl(argc, argv, std::cout, std::cerr); }
