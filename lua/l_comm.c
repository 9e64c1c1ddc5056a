/* lfl.comm: the job's communicator (core/comm/comm.h) and the data-parallel
 * bucket layout (core/comm/dp.h) for the trainer.
 *   comm.init([timeout_s]) -> {rank, size, local_rank, local_size, backend}
 *   comm.info() -> the same table (init first)     comm.have_mpi() / comm.launched()
 *   comm.set_timeout(s)     comm.barrier()         comm.stats() -> {bytes, calls} (both communicators)
 *   comm.all_reduce(x [, op])  x: contiguous f32/f64 tensor (in place, returns it)
 *                              or a list of numbers (returns a new list, f64)
 *                              op: "sum" (default), "mean", "max", "min"
 *   comm.reduce_scatter(send, recv [, op])  comm.all_gather(send, recv)
 *   comm.broadcast(x [, root])  (root is 0-based, like ranks)
 *     Tensors on a CUDA device go through the device communicator (NCCL),
 *     host tensors through the world's (MPI); all of one call on one device.
 *   comm.device_info() -> the device communicator's table (made on first call),
 *     with device = the CUDA device this rank's collectives use
 *   comm.nccl() -> available (bool), description
 *   comm.dp(numels, bucket_elems) -> DP: bucketed collectives over a fixed list
 *     (a list of tensors on a CUDA device: over the device communicator, the
 *     staging bucket in device memory; every tensor then on that device)
 *     of tensors (list entries may be nil where a gradient is missing):
 *     dp:all_reduce_mean(list)  dp:reduce_scatter_mean(list, shard)
 *     dp:pack(list, shard)      dp:all_gather(shard, list)  dp:broadcast(list [, root])
 *     dp:reduce_scatter_mean_inplace(list)  (this rank's slice of the mean into the list's own slice)
 *     dp:all_gather_inplace(list)           (every rank's own slice of the list to every rank)
 *     dp:shard_numel()  dp:buckets()
 *     dp:pieces() -> {{tensor = i (1-based), offset =, shard_offset =, len =}} (offsets 0-based) */
#include "bridge.h"
#include "comm/comm.h"
#include "comm/dp.h"

#define DP_MT "lfl.DP"

static lfl_comm *world(lua_State *L)
{
    lfl_comm *c = lfl_comm_current();
    if (!c) lfl_lua_check(L, lfl_comm_world(&c));
    return c;
}

static void push_info(lua_State *L, lfl_comm *c)
{
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, c->rank);
    lua_setfield(L, -2, "rank");
    lua_pushinteger(L, c->size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, c->local_rank);
    lua_setfield(L, -2, "local_rank");
    lua_pushinteger(L, c->local_size);
    lua_setfield(L, -2, "local_size");
    lua_pushstring(L, c->be->name);
    lua_setfield(L, -2, "backend");
    lua_pushnumber(L, c->timeout);
    lua_setfield(L, -2, "timeout");
    lua_pushinteger(L, c->device);
    lua_setfield(L, -2, "device");
}

static lfl_comm *device_comm(lua_State *L)
{
    lfl_comm *c = lfl_comm_device_current();
    if (!c) lfl_lua_check(L, lfl_comm_device(&c));
    return c;
}

static int l_device_info(lua_State *L)
{
    push_info(L, device_comm(L));
    return 1;
}

static int l_nccl(lua_State *L)
{
    bool ok = false;
    const char *why = lfl_comm_nccl_describe(&ok);
    lua_pushboolean(L, ok);
    lua_pushstring(L, why);
    return 2;
}

static int l_init(lua_State *L)
{
    lfl_comm *c = world(L);
    if (!lua_isnoneornil(L, 1)) lfl_lua_check(L, lfl_comm_set_timeout(c, luaL_checknumber(L, 1)));
    push_info(L, c);
    return 1;
}

static int l_info(lua_State *L)
{
    push_info(L, world(L));
    return 1;
}

static int l_have_mpi(lua_State *L)
{
    lua_pushboolean(L, lfl_comm_have_mpi());
    return 1;
}

static int l_launched(lua_State *L)
{
    lua_pushboolean(L, lfl_comm_launched());
    return 1;
}

static int l_set_timeout(lua_State *L)
{
    lfl_lua_check(L, lfl_comm_set_timeout(world(L), luaL_checknumber(L, 1)));
    if (lfl_comm_device_current()) lfl_lua_check(L, lfl_comm_set_timeout(lfl_comm_device_current(), luaL_checknumber(L, 1)));
    return 0;
}

static int l_barrier(lua_State *L)
{
    lfl_lua_check(L, lfl_comm_barrier(world(L)));
    return 0;
}

static int l_stats(lua_State *L)
{
    lfl_comm *c = world(L), *d = lfl_comm_device_current();
    /* both communicators: a run on a device moves its gradients through the device one */
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, (double)(c->bytes + (d ? d->bytes : 0)));
    lua_setfield(L, -2, "bytes");
    lua_pushnumber(L, (double)(c->calls + (d ? d->calls : 0)));
    lua_setfield(L, -2, "calls");
    return 1;
}

static lfl_comm_op check_op(lua_State *L, int idx)
{
    static const char *const names[] = {"sum", "mean", "max", "min", NULL};
    static const lfl_comm_op ops[] = {LFL_COMM_SUM, LFL_COMM_MEAN, LFL_COMM_MAX, LFL_COMM_MIN};
    return ops[luaL_checkoption(L, idx, "sum", names)];
}

/* the dtype of t, and in *c the communicator for t's device */
static lfl_comm_dtype check_buffer(lua_State *L, lfl_tensor *t, const char *op, lfl_comm **c)
{
    if (!lfl_is_contiguous(t) || (t->dtype != LFL_F32 && t->dtype != LFL_F64))
        luaL_error(L, "comm.%s: needs a contiguous f32 or f64 tensor, got %s%s", op, lfl_dtype_name(t->dtype),
                   lfl_is_contiguous(t) ? "" : " (strided)");
    if (t->device < 0) {
        *c = world(L);
    } else {
        *c = device_comm(L);
        if (t->device != (*c)->device)
            luaL_error(L, "comm.%s: the tensor is on cuda:%d, but this rank's collectives use cuda:%d", op, t->device,
                       (*c)->device);
    }
    return t->dtype == LFL_F32 ? LFL_COMM_F32 : LFL_COMM_F64;
}

static void same_device(lua_State *L, lfl_tensor *s, lfl_tensor *r, const char *op)
{
    if (s->device != r->device)
        luaL_error(L, "comm.%s: send and recv must be on one device (send on %s%d, recv on %s%d)", op,
                   s->device < 0 ? "cpu" : "cuda:", s->device, r->device < 0 ? "cpu" : "cuda:", r->device);
}

static int l_all_reduce(lua_State *L)
{
    lfl_comm *c = world(L);
    lfl_comm_op op = check_op(L, 2);
    if (lua_istable(L, 1) && !lfl_lua_is_tensor(L, 1)) {
        int n = (int)lua_objlen(L, 1);
        double *buf = lua_newuserdata(L, sizeof(double) * (size_t)(n > 0 ? n : 1));
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, 1, i + 1);
            if (!lua_isnumber(L, -1)) luaL_error(L, "comm.all_reduce: entry %d of the list is not a number", i + 1);
            buf[i] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        lfl_lua_check(L, lfl_comm_allreduce(c, buf, n, LFL_COMM_F64, op));
        lua_createtable(L, n, 0);
        for (int i = 0; i < n; i++) {
            lua_pushnumber(L, buf[i]);
            lua_rawseti(L, -2, i + 1);
        }
        return 1;
    }
    lfl_tensor *t = lfl_lua_check_tensor(L, 1);
    lfl_comm_dtype dt = check_buffer(L, t, "all_reduce", &c);
    lfl_lua_check(L, lfl_comm_allreduce(c, lfl_data(t), lfl_numel(t), dt, op));
    lua_settop(L, 1);
    return 1;
}

static int l_reduce_scatter(lua_State *L)
{
    lfl_comm *c = world(L);
    lfl_tensor *s = lfl_lua_check_tensor(L, 1), *r = lfl_lua_check_tensor(L, 2);
    same_device(L, s, r, "reduce_scatter");
    lfl_comm_dtype dt = check_buffer(L, s, "reduce_scatter", &c);
    if (check_buffer(L, r, "reduce_scatter", &c) != dt || lfl_numel(s) != lfl_numel(r) * c->size)
        luaL_error(L, "comm.reduce_scatter: recv must have the send dtype and 1/%d of its %lld elements", c->size,
                   (long long)lfl_numel(s));
    lfl_lua_check(L, lfl_comm_reduce_scatter(c, lfl_data(s), lfl_data(r), lfl_numel(r), dt, check_op(L, 3)));
    lua_settop(L, 2);
    return 1;
}

static int l_all_gather(lua_State *L)
{
    lfl_comm *c = world(L);
    lfl_tensor *s = lfl_lua_check_tensor(L, 1), *r = lfl_lua_check_tensor(L, 2);
    same_device(L, s, r, "all_gather");
    lfl_comm_dtype dt = check_buffer(L, s, "all_gather", &c);
    if (check_buffer(L, r, "all_gather", &c) != dt || lfl_numel(r) != lfl_numel(s) * c->size)
        luaL_error(L, "comm.all_gather: recv must have the send dtype and %d times its %lld elements", c->size,
                   (long long)lfl_numel(s));
    lfl_lua_check(L, lfl_comm_allgather(c, lfl_data(s), lfl_data(r), lfl_numel(s), dt));
    lua_settop(L, 2);
    return 1;
}

static int l_broadcast(lua_State *L)
{
    lfl_comm *c = world(L);
    lfl_tensor *t = lfl_lua_check_tensor(L, 1);
    lfl_comm_dtype dt = check_buffer(L, t, "broadcast", &c);
    lfl_lua_check(L, lfl_comm_broadcast(c, lfl_data(t), lfl_numel(t), dt, (int)luaL_optinteger(L, 2, 0)));
    lua_settop(L, 1);
    return 1;
}

/* ---------------------------------------------------------------- DP */

static lfl_dp *check_dp(lua_State *L, int idx)
{
    lfl_dp **p = luaL_checkudata(L, idx, DP_MT);
    if (!*p) luaL_error(L, "DP: freed");
    return *p;
}

static int l_dp(lua_State *L)
{
    lfl_comm *c = world(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = (int)lua_objlen(L, 1);
    int64_t *numel = lua_newuserdata(L, sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        /* tensors on a CUDA device: the layout's collectives run on the device communicator */
        if (i == 0 && lfl_lua_is_tensor(L, -1) && lfl_lua_check_tensor(L, -1)->device >= 0) c = device_comm(L);
        numel[i] = lfl_lua_is_tensor(L, -1) ? lfl_numel(lfl_lua_check_tensor(L, -1))
                                             : lfl_lua_check_int64(L, -1, "comm.dp: element count");
        lua_pop(L, 1);
    }
    int64_t bucket = lfl_lua_check_int64(L, 2, "comm.dp: bucket_elems");
    lfl_dp **ud = lua_newuserdata(L, sizeof *ud);
    *ud = NULL;
    luaL_getmetatable(L, DP_MT);
    lua_setmetatable(L, -2);
    lfl_lua_check(L, lfl_dp_new(c, numel, n, bucket, ud));
    return 1;
}

static int l_dp_gc(lua_State *L)
{
    lfl_dp **p = luaL_checkudata(L, 1, DP_MT);
    lfl_dp_free(*p);
    *p = NULL;
    return 0;
}

/* the list at idx as a C array (nil -> NULL), kept alive by a userdata on the stack */
static lfl_tensor **tensor_list(lua_State *L, lfl_dp *dp, int idx)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lfl_tensor **ts = lua_newuserdata(L, sizeof *ts * (size_t)(dp->ntensors > 0 ? dp->ntensors : 1));
    for (int64_t i = 0; i < dp->ntensors; i++) {
        lua_rawgeti(L, idx, (int)i + 1);
        ts[i] = lua_isnil(L, -1) ? NULL : lfl_lua_check_tensor(L, -1);
        lua_pop(L, 1);
    }
    return ts;
}

static int l_dp_all_reduce_mean(lua_State *L)
{
    lfl_dp *dp = check_dp(L, 1);
    lfl_lua_check(L, lfl_dp_allreduce_mean(dp, tensor_list(L, dp, 2)));
    return 0;
}

static int l_dp_reduce_scatter_mean(lua_State *L)
{
    lfl_dp *dp = check_dp(L, 1);
    lfl_tensor *shard = lfl_lua_check_tensor(L, 3);
    /* dp:reduce_scatter_mean(grads, shard, add): add = true accumulates into shard */
    bool add = lua_toboolean(L, 4);
    lfl_tensor **ts = tensor_list(L, dp, 2);
    lfl_lua_check(L, add ? lfl_dp_reduce_scatter_mean_add(dp, ts, shard) : lfl_dp_reduce_scatter_mean(dp, ts, shard));
    return 0;
}

static int l_dp_reduce_scatter_mean_inplace(lua_State *L)
{
    lfl_dp *dp = check_dp(L, 1);
    lfl_lua_check(L, lfl_dp_reduce_scatter_mean_inplace(dp, tensor_list(L, dp, 2)));
    return 0;
}

static int l_dp_all_gather_inplace(lua_State *L)
{
    lfl_dp *dp = check_dp(L, 1);
    lfl_lua_check(L, lfl_dp_allgather_inplace(dp, tensor_list(L, dp, 2)));
    return 0;
}

static int l_dp_pack(lua_State *L)
{
    lfl_dp *dp = check_dp(L, 1);
    lfl_tensor *shard = lfl_lua_check_tensor(L, 3);
    lfl_lua_check(L, lfl_dp_pack_shard(dp, tensor_list(L, dp, 2), shard));
    return 0;
}

static int l_dp_all_gather(lua_State *L)
{
    lfl_dp *dp = check_dp(L, 1);
    lfl_tensor *shard = lfl_lua_check_tensor(L, 2);
    lfl_lua_check(L, lfl_dp_allgather(dp, shard, tensor_list(L, dp, 3)));
    return 0;
}

static int l_dp_broadcast(lua_State *L)
{
    lfl_dp *dp = check_dp(L, 1);
    int root = (int)luaL_optinteger(L, 3, 0);
    lfl_lua_check(L, lfl_dp_broadcast(dp, tensor_list(L, dp, 2), root));
    return 0;
}

static int l_dp_shard_numel(lua_State *L)
{
    lua_pushnumber(L, (double)check_dp(L, 1)->shard_numel);
    return 1;
}

static int l_dp_buckets(lua_State *L)
{
    lua_pushnumber(L, (double)check_dp(L, 1)->nbuckets);
    return 1;
}

static int l_dp_pieces(lua_State *L)
{
    lfl_dp *dp = check_dp(L, 1);
    lua_createtable(L, (int)dp->npieces, 0);
    for (int64_t i = 0; i < dp->npieces; i++) {
        lfl_dp_piece *p = &dp->pieces[i];
        lua_createtable(L, 0, 4);
        lua_pushnumber(L, (double)p->tensor + 1);
        lua_setfield(L, -2, "tensor");
        lua_pushnumber(L, (double)p->offset);
        lua_setfield(L, -2, "offset");
        lua_pushnumber(L, (double)p->shard_offset);
        lua_setfield(L, -2, "shard_offset");
        lua_pushnumber(L, (double)p->len);
        lua_setfield(L, -2, "len");
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

static int l_dp_trim(lua_State *L)
{
    lfl_dp_trim(check_dp(L, 1));
    return 0;
}

/* dp:release(params, keep_below): ZeRO-3 drops the data of the layout's
 * tensors of keep_below elements or more (smaller ones stay: DeepSpeed's
 * stage3_param_persistence_threshold); each becomes an empty [0] tensor */
static int l_dp_release(lua_State *L)
{
    lfl_dp *dp = check_dp(L, 1);
    int64_t keep_below = (int64_t)luaL_optnumber(L, 3, 0); /* before tensor_list pushes its userdata */
    lfl_tensor **ts = tensor_list(L, dp, 2);
    for (int64_t i = 0; i < dp->ntensors; i++) {
        if (!ts[i]) return luaL_error(L, "dp:release: tensor %d is missing", (int)i + 1);
        if (dp->numel[i] < keep_below || lfl_numel(ts[i]) == 0) continue;
        lfl_lua_check(L, lfl_tensor_drop_data(ts[i]));
    }
    return 0;
}

/* dp:materialize(params, shapes): fresh storage of its shape for every tensor
 * that dp:release emptied (the all-gather then fills it) */
static int l_dp_materialize(lua_State *L)
{
    lfl_dp *dp = check_dp(L, 1);
    lfl_tensor **ts = tensor_list(L, dp, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    for (int64_t i = 0; i < dp->ntensors; i++) {
        if (!ts[i]) return luaL_error(L, "dp:materialize: tensor %d is missing", (int)i + 1);
        if (lfl_numel(ts[i]) == dp->numel[i]) continue;
        lua_rawgeti(L, 3, (int)i + 1);
        if (!lua_istable(L, -1)) return luaL_error(L, "dp:materialize: shape %d is not a list", (int)i + 1);
        int nd = (int)lua_objlen(L, -1);
        if (nd < 1 || nd > LFL_MAX_DIMS) return luaL_error(L, "dp:materialize: shape %d has %d dims", (int)i + 1, nd);
        int64_t shape[LFL_MAX_DIMS], n = 1;
        for (int d = 0; d < nd; d++) {
            lua_rawgeti(L, -1, d + 1);
            shape[d] = lfl_lua_check_int64(L, -1, "dp:materialize: size");
            n *= shape[d];
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        if (n != dp->numel[i])
            return luaL_error(L, "dp:materialize: shape %d has %d elements, the layout %d", (int)i + 1, (int)n,
                              (int)dp->numel[i]);
        lfl_lua_check(L, lfl_tensor_realloc(ts[i], nd, shape));
    }
    return 0;
}

static const luaL_Reg dp_methods[] = {
    {"all_reduce_mean", l_dp_all_reduce_mean}, {"reduce_scatter_mean", l_dp_reduce_scatter_mean},
    {"pack", l_dp_pack}, {"all_gather", l_dp_all_gather},
    {"reduce_scatter_mean_inplace", l_dp_reduce_scatter_mean_inplace}, {"all_gather_inplace", l_dp_all_gather_inplace}, {"broadcast", l_dp_broadcast},
    {"shard_numel", l_dp_shard_numel}, {"buckets", l_dp_buckets}, {"pieces", l_dp_pieces},
    {"trim", l_dp_trim}, {"release", l_dp_release}, {"materialize", l_dp_materialize}, {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"init", l_init}, {"info", l_info}, {"have_mpi", l_have_mpi}, {"launched", l_launched},
    {"device_info", l_device_info}, {"nccl", l_nccl},
    {"set_timeout", l_set_timeout}, {"barrier", l_barrier}, {"stats", l_stats}, {"all_reduce", l_all_reduce},
    {"reduce_scatter", l_reduce_scatter}, {"all_gather", l_all_gather}, {"broadcast", l_broadcast}, {"dp", l_dp},
    {NULL, NULL},
};

LFL_LUA_MODULE(comm)
{
    luaL_newmetatable(L, DP_MT);
    lua_pushcfunction(L, l_dp_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    luaL_register(L, NULL, dp_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lfl_lua_register_funcs(L, "comm", funcs);
}
