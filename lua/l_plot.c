/* lfl._plot.lines(path, {title=, xlabel=, ylabel=, width=, height=},
 *                 {{x = {...}, y = {...}, label=, color = {r,g,b}, width=, alpha=}, ...}) */
#include "bridge.h"
#include "io/plot.h"

static double *numbers(lua_State *L, int idx, const char *field, int *n)
{
    lua_getfield(L, idx, field);
    if (!lua_istable(L, -1)) luaL_error(L, "plot: series.%s must be a list of numbers", field);
    *n = (int)lua_objlen(L, -1);
    double *v = lua_newuserdata(L, sizeof(double) * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++) {
        lua_rawgeti(L, -2, i + 1);
        v[i] = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    lua_replace(L, -2); /* keep the buffer alive on the stack */
    return v;
}

static int l_lines(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    int ns = (int)lua_objlen(L, 3);
    lfl_plot_series *se = lua_newuserdata(L, sizeof *se * (size_t)(ns ? ns : 1));
    for (int s = 0; s < ns; s++) {
        lua_rawgeti(L, 3, s + 1);
        int idx = lua_gettop(L);
        int nx, ny;
        se[s].x = numbers(L, idx, "x", &nx);
        se[s].y = numbers(L, idx, "y", &ny);
        if (nx != ny) return luaL_error(L, "plot: series %d has %d x and %d y values", s + 1, nx, ny);
        se[s].n = nx;
        lua_getfield(L, idx, "label");
        se[s].label = lua_tostring(L, -1);
        lua_getfield(L, idx, "width");
        se[s].width = lua_tonumber(L, -1);
        lua_getfield(L, idx, "alpha");
        se[s].alpha = lua_tonumber(L, -1);
        lua_getfield(L, idx, "color");
        for (int c = 0; c < 3; c++) {
            se[s].rgb[c] = 0;
            if (lua_istable(L, -1)) { lua_rawgeti(L, -1, c + 1); se[s].rgb[c] = lua_tonumber(L, -1); lua_pop(L, 1); }
        }
        lua_pop(L, 4);
        /* series table stays on the stack (it anchors the buffers) */
    }
    lua_getfield(L, 2, "title"); const char *title = lua_tostring(L, -1);
    lua_getfield(L, 2, "xlabel"); const char *xl = lua_tostring(L, -1);
    lua_getfield(L, 2, "ylabel"); const char *yl = lua_tostring(L, -1);
    lua_getfield(L, 2, "width"); int w = (int)luaL_optinteger(L, -1, 800);
    lua_getfield(L, 2, "height"); int h = (int)luaL_optinteger(L, -1, 500);
    lfl_lua_check(L, lfl_plot_png(path, title, xl, yl, ns, se, w, h));
    return 0;
}

static const luaL_Reg funcs[] = {{"lines", l_lines}, {NULL, NULL}};

LFL_LUA_MODULE(plot) { lfl_lua_register_funcs(L, "_plot", funcs); }
