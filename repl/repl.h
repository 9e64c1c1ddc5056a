/* The interactive loop of `lfl` (readline, history, completion). */
#ifndef LFL_REPL_H
#define LFL_REPL_H

#include <lua.h>

/* Runs the REPL until EOF; returns 0. */
int lfl_repl(lua_State *L);
/* Calls the function below narg arguments with a traceback handler and
 * Ctrl-C interruption; as lua_pcall. */
int lfl_docall(lua_State *L, int narg, int nres);

#endif
