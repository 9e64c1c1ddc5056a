/* Fuzz target: the request path of `lfl serve` behind libmicrohttpd (which
 * owns the socket and HTTP parsing): routing, the API key check, request
 * validation and the OpenAI answers of stdlib/lfl/infer/serve.lua, through
 * the harness http.lua (mock request objects, generation stubbed). */
#include "common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();
    fuzz_lua();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lua_run("http", data, size, NULL);
    return 0;
}
