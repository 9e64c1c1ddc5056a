-- lfl.fs (lua/l_fs.c over core/fs.c): every function on real folders under a
-- temporary root, with names holding spaces, quotes, `$(touch PWNED)`, a
-- newline and UTF-8; errors raised with the path and the reason.
local t = lfl.test
local fs = lfl.fs

local root = os.tmpname()
os.remove(root)
fs.mkdir(root)
local function P(rel) return root .. "/" .. rel end

local weird = {"sp ace", "single'quote", 'double"quote', "$(touch PWNED)", "new\nline",
               "utf8-\195\188\195\177\195\174-\230\151\165\230\156\172",
               "all 'of \"them\" $(touch PWNED)\n\195\188`id`;"}
local function sorted(list)
  local c = {}
  for i, v in ipairs(list) do c[i] = v end
  table.sort(c)
  return c
end
local function same_list(got, want, what)
  t.assert_eq(#got, #want, what .. ": count")
  for i = 1, #want do t.assert_eq(got[i], want[i], what .. ": entry " .. i) end
end
local function put(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

t.suite("fs", {
  mkdir = function()
    for _, w in ipairs(weird) do
      local p = P("mk/" .. w .. "/deeper/" .. w)
      fs.mkdir(p)
      t.assert(fs.isdir(p), "made " .. p)
      fs.mkdir(p .. "/") -- exists: fine
    end
    put(P("mk/file"), "x")
    t.assert_error(function() fs.mkdir(P("mk/file")) end, "mk/file': exists and is not a directory")
    t.assert_error(function() fs.mkdir(P("mk/file/sub")) end, "mk/file' is not a directory")
    t.assert_error(function() fs.mkdir("") end, "empty path")
    t.assert_error(function() fs.mkdir(P("nul\0byte")) end, "NUL byte")
    t.assert(not fs.exists(P("nul")), "a NUL byte does not truncate the path")
  end,

  list = function()
    fs.mkdir(P("ls"))
    for _, w in ipairs(weird) do put(P("ls/" .. w), w) end
    same_list(fs.list(P("ls")), sorted(weird), "list")
    fs.mkdir(P("ls empty"))
    same_list(fs.list(P("ls empty")), {}, "empty folder")
    t.assert_error(function() fs.list(P("no such")) end, "list '" .. P("no such") .. "': No such file or directory")
  end,

  write_read = function()
    fs.mkdir(P("wr"))
    for _, w in ipairs(weird) do
      fs.write(P("wr/" .. w), w .. "\0binary\255")
      t.assert_eq(fs.read(P("wr/" .. w)), w .. "\0binary\255", "roundtrip")
    end
    same_list(fs.list(P("wr")), sorted(weird), "no temporary file after writes")
    fs.write(P("wr/" .. weird[1]), "")
    t.assert_eq(fs.read(P("wr/" .. weird[1])), "", "overwritten with nothing")
    -- a failing write (the target is a folder: fails for root too) keeps what was there
    fs.mkdir(P("wf/target"))
    fs.write(P("wf/target/inside"), "keep")
    t.assert_error(function() fs.write(P("wf/target"), "new") end, "write '" .. P("wf/target") .. "': Is a directory")
    same_list(fs.list(P("wf")), {"target"}, "no temporary file after a failed write")
    t.assert_eq(fs.read(P("wf/target/inside")), "keep")
    t.assert_error(function() fs.write(P("no dir/x"), "x") end, "No such file or directory")
    t.assert_error(function() fs.write(P("x")) end, "string expected")
    -- read: nil + message, like io.open
    local s, err = fs.read(P("wr/missing"))
    t.assert_eq(s, nil)
    t.assert_eq(err, "read '" .. P("wr/missing") .. "': No such file or directory")
    s, err = fs.read(P("wr"))
    t.assert(s == nil and err:find("Is a directory", 1, true), "reading a folder: " .. tostring(err))
  end,

  exists_isdir_stat = function()
    fs.mkdir(P("st"))
    local f = P("st/" .. weird[7])
    fs.write(f, "12345")
    t.assert(fs.exists(f) and not fs.isdir(f), "a file")
    t.assert(fs.exists(P("st")) and fs.isdir(P("st")), "a folder")
    t.assert(not fs.exists(P("st/absent")) and not fs.isdir(P("st/absent")), "absent")
    local st = fs.stat(f)
    t.assert_eq(st.kind, "file"); t.assert_eq(st.size, 5)
    t.assert(math.abs(st.mtime - os.time()) < 600, "mtime in seconds: " .. st.mtime)
    t.assert_eq(fs.stat(P("st")).kind, "directory")
    t.assert_eq(fs.stat(P("st/absent")), nil)
    fs.symlink(weird[7], P("st/link"))
    t.assert_eq(fs.stat(P("st/link")).kind, "link")
    t.assert_eq(fs.stat(P("st/link"), true).kind, "file")
    t.assert_eq(fs.stat(P("st/link"), true).size, 5)
    t.assert(fs.exists(P("st/link")), "exists follows links")
    fs.symlink("nowhere", P("st/dangling"))
    t.assert(not fs.exists(P("st/dangling")), "a dangling link does not exist")
    t.assert_eq(fs.stat(P("st/dangling")).kind, "link")
    t.assert_eq(fs.stat(P("st/dangling"), true), nil)
    fs.symlink(P("st"), P("st/dirlink"))
    t.assert(fs.isdir(P("st/dirlink")), "isdir follows links")
    t.assert_error(function() fs.symlink("x", f) end, "File exists")
    t.assert_eq(fs.stat("/dev/null", true).kind, "other")
  end,

  copy = function()
    fs.mkdir(P("cp/into"))
    for _, w in ipairs(weird) do
      fs.write(P("cp/src " .. w), w)
      fs.copy(P("cp/src " .. w), P("cp/dst " .. w))
      t.assert_eq(fs.read(P("cp/dst " .. w)), w, "copied")
      fs.copy(P("cp/src " .. w), P("cp/into"))
    end
    local want = {}
    for i, w in ipairs(weird) do want[i] = "src " .. w end
    same_list(fs.list(P("cp/into")), sorted(want), "copies into a folder keep the base name, no temporary files")
    t.assert_error(function() fs.copy(P("cp/none"), P("cp/x")) end, "copy '" .. P("cp/none") .. "': No such file or directory")
    t.assert_error(function() fs.copy(P("cp/into"), P("cp/x")) end, "not a regular file")
    t.assert(not fs.exists(P("cp/x")), "failed copies leave nothing")
  end,

  remove = function()
    fs.mkdir(P("outside/sub"))
    fs.write(P("outside/sub/precious"), "keep")
    for _, w in ipairs(weird) do
      fs.mkdir(P("rm/tree/" .. w .. "/" .. w))
      fs.write(P("rm/tree/" .. w .. "/" .. w .. "/f " .. w), w)
    end
    fs.symlink(P("outside"), P("rm/tree/link out"))
    fs.symlink(P("outside/sub"), P("rm/tree/" .. weird[4] .. "/deep link"))
    t.assert_eq(fs.remove(P("rm/tree")), true)
    t.assert(not fs.exists(P("rm/tree")), "tree gone")
    t.assert_eq(fs.read(P("outside/sub/precious")), "keep", "the folder linked from the tree survives")
    t.assert_eq(fs.remove(P("rm/tree")), false, "absent: false, no error")
    t.assert_eq(fs.remove(P("rm/none/deeper")), false)
    fs.symlink(P("outside"), P("rm/link"))
    t.assert_eq(fs.remove(P("rm/link/")), true)
    t.assert(fs.stat(P("rm/link")) == nil and fs.exists(P("outside/sub/precious")), "link/ removes the link only")
    fs.write(P("rm/" .. weird[4]), "x")
    t.assert_eq(fs.remove(P("rm/" .. weird[4])), true)
    t.assert(not fs.exists(P("rm/" .. weird[4])), "file gone")
    t.assert_error(function() fs.remove("/") end, "refusing to remove the root folder")
    t.assert_error(function() fs.remove(P("rm/..")) end, "refusing")
  end,

  walk = function()
    fs.mkdir(P("wk/a/b"))
    fs.mkdir(P("wk_out/inner"))
    fs.write(P("wk/top"), "1")
    fs.write(P("wk/a/" .. weird[2]), "2")
    fs.write(P("wk/a/b/" .. weird[7]), "3")
    fs.write(P("wk_out/inner/o"), "4")
    fs.symlink("../top", P("wk/a/top link"))
    fs.symlink(P("wk_out"), P("wk/a/out"))
    fs.symlink("..", P("wk/a/b/loop"))
    fs.symlink(P("wk"), P("wk/a/b/root loop"))
    fs.symlink("nowhere", P("wk/dangling"))
    same_list(fs.walk(P("wk")), sorted({"top", "a/" .. weird[2], "a/b/" .. weird[7], "a/out/inner/o", "a/top link"}), "walk")
    t.assert_error(function() fs.walk(P("wk missing")) end, "walk '" .. P("wk missing") .. "': No such file or directory")
    t.assert_error(function() fs.walk(P("wk/top")) end, "Not a directory")
  end,

  isatty = function()
    -- a pty is checked in tests/c/test_fs.c; here the binding's types
    t.assert_eq(type(fs.isatty(1)), "boolean")
    t.assert_eq(fs.isatty(-1), false)
    t.assert_error(function() fs.isatty("stdout") end, "number expected")
  end,

  writable_dir = function()
    local d = P("wd/" .. weird[7] .. "/out")
    fs.writable_dir(d, "output_dir")
    t.assert(fs.isdir(d), "made")
    same_list(fs.list(d), {}, "probe removed")
    fs.writable_dir(d) -- exists: fine
    fs.write(P("wd/file"), "x")
    t.assert_error(function() fs.writable_dir(P("wd/file/out"), "output_dir") end,
                   "output_dir '" .. P("wd/file/out") .. "': '" .. P("wd/file") .. "' is not a directory")
    t.assert_error(function() fs.writable_dir("/proc", "output_dir") end, "output_dir '/proc': ")
  end,
})

t.case("fs.zz_cleanup", function()
  t.assert(not fs.exists("PWNED") and not fs.exists(P("PWNED")), "no name ran as shell")
  t.assert_eq(fs.remove(root), true)
  t.assert(not fs.exists(root), "root removed")
end)

t.run()
