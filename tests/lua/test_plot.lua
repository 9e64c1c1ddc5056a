-- Loss plots: PNG files written by cairo, LlamaFactory's smoothing.
local t = lfl.test

t.suite("plot", {
  training_loss_png = function()
    local dir = os.tmpname() .. "_plot"
    lfl.fs.mkdir(dir)
    local h = {}
    for i = 1, 40 do h[#h + 1] = {step = i, loss = 2 * math.exp(-i / 10)} end
    h[#h + 1] = {step = 20, eval_loss = 0.9}
    local files = lfl.plot.training_loss(dir, h)
    t.assert_eq(#files, 2)
    for _, f in ipairs(files) do
      local fh = assert(io.open(f, "rb"))
      local head = fh:read(8)
      local size = fh:seek("end")
      fh:close()
      t.assert_eq(head, "\137PNG\r\n\26\n", f .. " is a PNG")
      t.assert(size > 5000, f .. " has content (" .. size .. " bytes)")
    end
    lfl.fs.remove(dir)
    t.assert_error(function() lfl.plot.lines("/nonexistent/dir/x.png", {}, {{x = {1, 2}, y = {1, 2}}}) end, "cannot write")
    t.assert_error(function() lfl.plot.lines("/tmp/x.png", {}, {{x = {1, 2}, y = {1}}}) end, "2 x and 1 y")
  end,

  -- one logged point: raw and smoothed loss 1 ulp apart made the y span far
  -- smaller than a tick step can resolve, and the tick loop never ended
  single_point_and_ulp_span_do_not_hang = function()
    local dir = os.tmpname() .. "_plot1"
    lfl.fs.mkdir(dir)
    local files = lfl.plot.training_loss(dir, {{step = 2, loss = 3.7242074012756348}})
    t.assert_eq(#files, 1)
    local y = 3.7242074012756348
    lfl.plot.lines(dir .. "/ulp.png", {}, {{x = {1, 2}, y = {y, y + y * 2 ^ -52}}})
    lfl.plot.lines(dir .. "/ulpx.png", {}, {{x = {1e15, 1e15 + 0.125}, y = {1, 2}}})
    t.assert(lfl.fs.exists(dir .. "/ulp.png") and lfl.fs.exists(dir .. "/ulpx.png"), "both plots written")
    lfl.fs.remove(dir)
  end,

  smoothing_matches_llamafactory = function()
    -- weight = 1.8 * (sigmoid(0.05 n) - 0.5); EMA seeded with the first value
    local s = lfl.plot.smooth({1, 2, 3})
    local w = 1.8 * (1 / (1 + math.exp(-0.15)) - 0.5)
    t.assert_close(s[1], 1)
    t.assert_close(s[2], w * 1 + (1 - w) * 2)
    t.assert_close(s[3], w * s[2] + (1 - w) * 3)
  end,
})

t.run()
