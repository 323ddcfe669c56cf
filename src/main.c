#include "core/common.h"
#include <stdio.h>
int main(int argc, char **argv)
{
    (void)argc; (void)argv;
    puts("meshd " PACKAGE_VERSION);
    return 0;
}
