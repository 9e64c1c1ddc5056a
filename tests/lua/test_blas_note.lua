-- lfl.sys.blas()'s third value (core/blas.c lfl_blas_note): a warning when
-- OPENBLAS_CORETYPE pins a kernel set without the AVX-512 this CPU has, nil
-- otherwise. Each case runs lfl as a child with its own environment, since
-- OpenBLAS is loaded once per process.
local t = lfl.test
local sys, fs = lfl.sys, lfl.fs

local root = os.tmpname()
os.remove(root)
fs.mkdir(root)
local script = root .. "/note.lua"
fs.write(script, 'local _, core, note = lfl.sys.blas()\nio.stdout:write(core, "|", note or "nil", "\\n")\n')

-- the child's "corename|note" line under OPENBLAS_CORETYPE = ct ("" lets lfl choose)
local function child(ct)
  local out = root .. "/out_" .. (ct == "" and "auto" or ct) .. ".txt"
  local pid = sys.spawn({sys.exe(), script}, {stdout = out, env = {OPENBLAS_CORETYPE = ct}})
  local t0 = sys.clock()
  while true do
    local st = sys.wait(pid)
    if st then
      t.assert_eq(st.code, 0, "child exit code under OPENBLAS_CORETYPE=" .. ct)
      break
    end
    t.assert(sys.clock() - t0 < 60, "child under OPENBLAS_CORETYPE=" .. ct .. " did not end")
    local x = sys.clock() while sys.clock() - x < 0.02 do end
  end
  local core, note = fs.read(out):match("^(.-)|(.*)\n$")
  t.assert(core, "child output: " .. fs.read(out))
  return core, note ~= "nil" and note or nil
end

t.suite("blas_note", {
  coretype = function()
    local auto_core, auto_note = child("")
    t.assert_eq(auto_note, nil, "lfl's own choice gets no note")
    local avx512 = ({skylakex = true, cooperlake = true, sapphirerapids = true})[auto_core:lower()] or false
    local _, has_note = child("Haswell")
    if avx512 then
      t.assert(has_note and has_note:find("OPENBLAS_CORETYPE=Haswell keeps OpenBLAS off the AVX%-512 kernels"),
        "a Haswell pin on an AVX-512 CPU is noted, got " .. tostring(has_note))
      t.assert(has_note:find(auto_core:upper(), 1, true), "the note names lfl's choice " .. auto_core)
      local _, skx_note = child("SkylakeX")
      t.assert_eq(skx_note, nil, "an AVX-512 pin gets no note")
    else
      t.assert_eq(has_note, nil, "no AVX-512 here (lfl picked " .. auto_core .. "): no note")
    end
  end,
})

t.case("blas_note.zz_cleanup", function() t.assert_eq(fs.remove(root), true) end)

t.run()
