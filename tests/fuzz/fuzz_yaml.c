/* Fuzz target: the YAML reader, lfl.yaml (libyaml + PyYAML's scalar rules,
 * lua/l_yaml.c), through the harness yaml.lua: any input, under both schemas,
 * either fails with an error naming the source or gives a value. */
#include "common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();
    fuzz_lua();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_run("yaml", data, size, NULL);
    return 0;
}
