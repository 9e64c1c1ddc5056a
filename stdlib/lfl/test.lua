-- A small test framework: suites of named cases, assertions for numbers and
-- tensors, finite-difference gradient checks, and a closing summary line
-- ("N passed, N failed") with a non-zero exit status on failure.
local lfl = lfl
local fmt = string.format
local unpack = table.unpack or unpack

local M = {}
local cases, current = {}, nil

-- M.suite("name", { case = function() ... end, ... }) or M.case("name", fn)
function M.suite(name, tbl)
  local names = {}
  for k in pairs(tbl) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do cases[#cases + 1] = {name = name .. "." .. k, fn = tbl[k]} end
end

function M.case(name, fn) cases[#cases + 1] = {name = name, fn = fn} end

local function fail(msg, level) error(msg, (level or 1) + 1) end

function M.assert(cond, msg) if not cond then fail(msg or "assertion failed", 2) end end

function M.assert_eq(a, b, msg)
  if a ~= b then fail(fmt("%sexpected %s, got %s", msg and msg .. ": " or "", tostring(b), tostring(a)), 2) end
end

function M.assert_close(a, b, tol, msg)
  tol = tol or 1e-6
  local d = math.abs(a - b)
  if not (d <= tol * math.max(1, math.abs(b))) then
    fail(fmt("%sexpected %.10g, got %.10g (diff %.3g, tol %.3g)", msg and msg .. ": " or "", b, a, d, tol), 2)
  end
end

-- max |a - b| over all elements; shapes must match
function M.max_abs_diff(a, b)
  local sa, sb = a:size(), b:size()
  if #sa ~= #sb then return math.huge, "ranks differ" end
  for i = 1, #sa do if sa[i] ~= sb[i] then return math.huge, "shapes differ" end end
  local ca, cb = a:to("cpu"), b:to("cpu")
  local m = 0
  for i = 1, a:numel() do
    local d = math.abs(ca:_at(i) - cb:_at(i))
    if d ~= d then return math.huge, "nan at element " .. i end
    if d > m then m = d end
  end
  return m
end

-- |a - b| <= atol + rtol * |b| elementwise
function M.assert_tensor_close(a, b, atol, rtol, msg)
  atol, rtol = atol or 1e-5, rtol or 1e-4
  if type(b) == "table" and not lfl.is_tensor(b) then b = lfl.tensor(b, a:dtype()) end
  local sa, sb = a:size(), b:size()
  local shape_ok = #sa == #sb
  for i = 1, math.min(#sa, #sb) do shape_ok = shape_ok and sa[i] == sb[i] end
  if not shape_ok then
    fail(fmt("%sshape [%s] ~= expected [%s]", msg and msg .. ": " or "", table.concat(sa, ","), table.concat(sb, ",")), 2)
  end
  local ca, cb = a:to("cpu"), b:to("cpu")
  for i = 1, a:numel() do
    local x, y = ca:_at(i), cb:_at(i)
    local d = math.abs(x - y)
    if not (d <= atol + rtol * math.abs(y)) then
      fail(fmt("%selement %d: got %.8g, expected %.8g (diff %.3g)", msg and msg .. ": " or "", i, x, y, d), 2)
    end
  end
end

-- fn must raise an error whose message contains `pattern` (plain text)
function M.assert_error(fn, pattern, msg)
  local ok, err = pcall(fn)
  if ok then fail((msg and msg .. ": " or "") .. "expected an error, none was raised", 2) end
  if pattern and not tostring(err):find(pattern, 1, true) then
    fail(fmt("%serror %q does not mention %q", msg and msg .. ": " or "", tostring(err), pattern), 2)
  end
  return err
end

-- Finite-difference check of f's gradients w.r.t. the f64 tensors in `inputs`
-- (which must require grad). f returns a tensor; its gradient is checked via
-- the scalar sum(f(x) * w) for a fixed random weight w.
function M.gradcheck(f, inputs, opts)
  opts = opts or {}
  local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-4
  local out = f(unpack(inputs))
  local w = lfl.randn(out:size(), "f64")
  for _, x in ipairs(inputs) do if lfl.is_tensor(x) and x:get_requires_grad() then x.grad = nil end end
  local function scalar()
    local o = f(unpack(inputs))
    return (o:double() * w):sum():item()
  end
  local loss = (out * w):sum()
  loss:backward()
  for k, x in ipairs(inputs) do
    if lfl.is_tensor(x) and x:get_requires_grad() then
      local g = x.grad
      if not g then fail(fmt("gradcheck: input %d got no gradient", k), 2) end
      local gflat = g:contiguous():view(-1)
      local size = x:size()
      for i = 1, x:numel() do
        -- the multi-index of flat element i (x may be a non-contiguous view)
        local idx, rem = {}, i - 1
        for d = #size, 1, -1 do idx[d] = rem % size[d] + 1; rem = math.floor(rem / size[d]) end
        local orig = x[idx]
        x[idx] = orig + eps
        local up = lfl.no_grad(scalar)
        x[idx] = orig - eps
        local down = lfl.no_grad(scalar)
        x[idx] = orig
        local num = (up - down) / (2 * eps)
        local ana = gflat[i]
        if not (math.abs(num - ana) <= atol + rtol * math.abs(num)) then
          fail(fmt("gradcheck: input %d element %d: analytic %.8g, numeric %.8g", k, i, ana, num), 2)
        end
      end
    end
  end
  return true
end

-- Runs every registered case; prints one line per failure and the summary.
-- A scratch folder `<tmp>_<tag>` holding the tiny golden llama (config,
-- weights and the small tokenizer, linked; `files` adds more as {src, name}),
-- with LFL_CACHE pointed into it so tokenized data stays there. Returns the
-- folder and the model folder inside; remove the folder when done.
function M.tiny_llama_dir(tag, files)
  local tmp = os.tmpname()
  os.remove(tmp)
  tmp = tmp .. "_" .. tag
  lfl.fs.mkdir(tmp .. "/model")
  local list = files or {"tests/golden/models/llama/config.json", "tests/golden/models/llama/model.safetensors"}
  for _, f in ipairs(list) do lfl.fs.symlink(lfl.home .. "/" .. f, tmp .. "/model/" .. f:match("[^/]+$")) end
  lfl.fs.symlink(lfl.home .. "/tests/golden/serve/tokenizer.json", tmp .. "/model/tokenizer.json")
  local real_getenv = os.getenv
  os.getenv = function(k)
    if k == "LFL_CACHE" then return tmp .. "/cache" end
    return real_getenv(k)
  end
  return tmp, tmp .. "/model"
end

-- The CUDA device the device tests run on (a GPU, or build-emu's emulator):
-- its description, or nil after printing why `name` is skipped.
function M.cuda_device(name)
  local desc, count = lfl.sys.cuda()
  if count < 1 then
    print(name .. ": skipped: no CUDA device (" .. desc .. ")")
    return nil
  end
  print(name .. " on " .. desc)
  return desc
end

function M.run(opts)
  opts = opts or {}
  local passed, failed = 0, 0
  local filter = os.getenv("LFL_TEST_FILTER")
  for _, c in ipairs(cases) do
    if not filter or c.name:find(filter, 1, true) then
      current = c.name
      local t0 = lfl.sys.clock()
      local ok, err = xpcall(c.fn, debug.traceback)
      local dt = lfl.sys.clock() - t0
      if ok then
        passed = passed + 1
        if os.getenv("LFL_TEST_VERBOSE") then print(fmt("ok    %s (%.2fs)", c.name, dt)) end
      else
        failed = failed + 1
        print(fmt("FAIL  %s\n      %s", c.name, tostring(err):gsub("\n", "\n      ")))
      end
    end
  end
  print(fmt("%d passed, %d failed", passed, failed))
  cases = {}
  if failed > 0 then os.exit(1) end
  return passed, failed
end

return M
