-- lfl.sys.spawn / kill / wait (lua/l_sys.c) on real child processes: argv
-- passed without a shell, output files, env, cwd, exit codes, signals sent to
-- the child's process group; lfl.fs.realpath and fs.read_at (tailing a file).
local t = lfl.test
local sys, fs = lfl.sys, lfl.fs

local root = os.tmpname()
os.remove(root)
fs.mkdir(root)
local function P(rel) return root .. "/" .. rel end

-- waits (polling, as the board does) up to `secs` for the child to end
local function reap(pid, secs)
  local t0 = sys.clock()
  while sys.clock() - t0 < (secs or 10) do
    local st = sys.wait(pid)
    if st then return st end
    local x = sys.clock() while sys.clock() - x < 0.02 do end
  end
  error("child " .. pid .. " did not end")
end

t.suite("sys_spawn", {
  argv_without_shell = function()
    local weird = "$(touch " .. P("PWNED") .. "); 'quoted' \"x\""
    local pid = sys.spawn({"/bin/echo", weird, 42}, {stdout = P("out.txt")})
    t.assert(type(pid) == "number" and pid > 1, "pid")
    t.assert_eq(reap(pid).code, 0)
    t.assert_eq(fs.read(P("out.txt")), weird .. " 42\n")
    t.assert(not fs.exists(P("PWNED")), "the argument never reached a shell")
  end,

  stdout_appends_stderr_env_cwd = function()
    fs.mkdir(P("wd"))
    -- lfl itself as the child: a one-line script printing env and cwd
    fs.write(P("wd/s.lua"), 'io.stdout:write(os.getenv("BOARD_T") or "nil", " ", lfl.fs.realpath("."), "\\n")\n'
      .. 'io.stderr:write("to stderr\\n")\nos.exit(3)\n')
    fs.write(P("log.txt"), "before\n")
    local pid = sys.spawn({sys.exe(), "s.lua"}, {stdout = P("log.txt"), stderr = P("err.txt"), cwd = P("wd"),
      env = {BOARD_T = "v 1"}})
    t.assert_eq(reap(pid, 30).code, 3)
    t.assert_eq(fs.read(P("log.txt")), "before\nv 1 " .. fs.realpath(P("wd")) .. "\n")
    t.assert_eq(fs.read(P("err.txt")), "to stderr\n")
    t.assert_eq(fs.realpath("."), fs.realpath(lfl.fs.realpath(".")), "the parent's cwd is unchanged")
  end,

  kill_reaches_the_group = function()
    local pid = sys.spawn({"/bin/sleep", "30"})
    t.assert_eq(sys.wait(pid), nil, "running")
    t.assert_eq(sys.kill(pid, "0"), true, "probe")
    t.assert_eq(sys.kill(pid, "TERM"), true)
    t.assert_eq(reap(pid).signal, "TERM")
    local ok, why = sys.kill(pid, "TERM")
    t.assert_eq(ok, false, "a reaped child is gone")
    t.assert(why:find("No such process", 1, true), why)
    pid = sys.spawn({"/bin/sleep", "30"})
    sys.kill(pid, "KILL")
    t.assert_eq(reap(pid).signal, "KILL")
  end,

  errors_are_clear = function()
    t.assert_error(function() sys.spawn({P("no-such-program")}) end, "sys.spawn: cannot start " .. P("no-such-program"))
    t.assert_error(function() sys.spawn({}) end, "argv is empty")
    t.assert_error(function() sys.spawn({"/bin/true"}, {cwd = P("nowhere")}) end, "in " .. P("nowhere"))
    t.assert_error(function() sys.spawn({"/bin/true", {}}) end, "argv[2] is a table")
    t.assert_error(function() sys.kill(12345, "BOGUS") end, "'BOGUS' is not a signal name")
    t.assert_error(function() sys.kill(1) end, "not a child's process id")
    t.assert_error(function() sys.wait(1) end, "sys.wait: process 1")
  end,

  realpath_and_read_at = function()
    fs.mkdir(P("a/b"))
    fs.symlink(P("a/b"), P("link"))
    -- the link is followed before "..": link/.. is a, not root
    t.assert_eq(fs.realpath(P("link/../b")), fs.realpath(P("a")) .. "/b")
    t.assert_eq(fs.realpath(P("a/./b/..")), fs.realpath(P("a")))
    local none, why = fs.realpath(P("missing"))
    t.assert_eq(none, nil)
    t.assert(why:find("No such file", 1, true), why)
    fs.write(P("tail.txt"), "0123456789")
    t.assert_eq(fs.read_at(P("tail.txt"), 0), "0123456789")
    t.assert_eq(fs.read_at(P("tail.txt"), 4, 3), "456")
    t.assert_eq(fs.read_at(P("tail.txt"), 10), "")
    t.assert_eq(fs.read_at(P("tail.txt"), 99), "")
    t.assert_eq(fs.read_at(P("missing"), 0), nil)
  end,
})

t.case("sys_spawn.zz_cleanup", function() t.assert_eq(fs.remove(root), true) end)

t.run()
