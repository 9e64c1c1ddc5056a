/* Fuzz target: the JSON decoders, lfl.json (cJSON, lua/l_json.c) and
 * lfl.text.pyjson (Lua), through the harness json.lua: any input either
 * fails with a clean error or decodes to a value whose encoding is stable
 * (decode -> encode -> decode -> encode gives the same text). */
#include "common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();
    fuzz_lua();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_run("json", data, size, NULL);
    return 0;
}
