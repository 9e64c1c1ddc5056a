/* lfl.gguf.tensors(path) -> {name = tensor}: every tensor of a GGUF file as a
 * zero-copy view of one read-only mapping, in PyTorch dim order (GGUF lists
 * ne[0] innermost first) and in its stored type (block types stay quantized). */
#include "bridge.h"
#include "io/gguf.h"


static int l_tensors(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lfl_gguf *g = NULL;
    lfl_lua_check(L, lfl_gguf_open(path, &g));
    lfl_status st;
    lfl_storage *map = lfl_storage_mmap(path, 0, (size_t)-1, &st);
    if (!map) { lfl_gguf_close(g); lfl_lua_check(L, st); }
    lua_createtable(L, 0, (int)g->n_tensors);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const lfl_gguf_tensor *ti = &g->tensors[i];
        int dt = lfl_ggml_type_to_dtype(ti->type);
        if (dt < 0) {
            lfl_storage_release(map);
            lfl_gguf_close(g);
            return luaL_error(L, "%s: tensor '%s' has ggml type %s (%d), which lfl cannot load yet", path, ti->name,
                              lfl_ggml_type_name(ti->type) ? lfl_ggml_type_name(ti->type) : "unknown", ti->type);
        }
        int64_t shape[LFL_MAX_DIMS];
        for (int d = 0; d < ti->ndim; d++) shape[d] = ti->ne[ti->ndim - 1 - d];
        lfl_tensor *t = NULL;
        char what[600];
        snprintf(what, sizeof what, "%s: tensor '%s'", path, ti->name);
        st = lfl_tensor_from_storage(what, map, (size_t)(g->data_offset + ti->offset), ti->ndim, shape,
                                     (lfl_dtype)dt, &t);
        if (st) {
            lfl_storage_release(map);
            lfl_gguf_close(g);
            lfl_lua_check(L, st);
        }
        lfl_lua_push_tensor(L, t);
        lua_setfield(L, -2, ti->name);
    }
    lfl_storage_release(map);
    lfl_gguf_close(g);
    return 1;
}

static const luaL_Reg funcs[] = {{"tensors", l_tensors}, {NULL, NULL}};

LFL_LUA_MODULE(gguf_tensors) { lfl_lua_register_funcs(L, "gguf", funcs); }
