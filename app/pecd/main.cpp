// pecd - the certified mail server daemon
#include <iostream>

int main() {
    std::cerr << "pecd: starting\n";
    return 0;
}
