-- The Jinja lexer: template source -> tokens, with the whitespace control of
-- transformers' environment (trim_blocks, lstrip_blocks, -/+ markers,
-- keep_trailing_newline=False), {% raw %} and comments, and Python's string
-- literal escapes.
local J = require "lfl.text.pyjson"
local fmt, concat, sub, find = string.format, table.concat, string.sub, string.find

local M = {}
-- ---------------------------------------------------------------------------
-- lexer
-- ---------------------------------------------------------------------------

local operators2 = {["//"] = true, ["**"] = true, ["=="] = true, ["!="] = true, [">="] = true, ["<="] = true}
local operators1 = {}
for c in ("+-/*%~[](){}><=.:|,;"):gmatch(".") do operators1[c] = true end

local function syntax_error(name, line, msg)
  error(fmt("jinja: %s:%d: syntax error: %s", name, line, msg), 0)
end

local simple_esc = {n = "\n", t = "\t", r = "\r", a = "\a", b = "\b", f = "\f", v = "\v",
  ["\\"] = "\\", ["'"] = "'", ['"'] = '"', ["\n"] = ""}

-- Python's unicode-escape decoding of a string literal's body
local function unescape(s)
  if not find(s, "\\", 1, true) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local a = find(s, "\\", i, true)
    if not a then out[#out + 1] = sub(s, i); break end
    out[#out + 1] = sub(s, i, a - 1)
    local c = sub(s, a + 1, a + 1)
    if simple_esc[c] then
      out[#out + 1] = simple_esc[c]; i = a + 2
    elseif c == "x" and s:match("^%x%x", a + 2) then
      out[#out + 1] = J.utf8_char(tonumber(sub(s, a + 2, a + 3), 16)); i = a + 4
    elseif c == "u" and s:match("^%x%x%x%x", a + 2) then
      local cp = tonumber(sub(s, a + 2, a + 5), 16)
      i = a + 6
      if cp >= 0xD800 and cp <= 0xDBFF and s:match("^\\u[dD][c-fC-F]%x%x", i) then
        cp = 0x10000 + (cp - 0xD800) * 1024 + (tonumber(sub(s, i + 2, i + 5), 16) - 0xDC00)
        i = i + 6
      end
      out[#out + 1] = J.utf8_char(cp)
    elseif c == "U" and s:match("^%x%x%x%x%x%x%x%x", a + 2) then
      out[#out + 1] = J.utf8_char(tonumber(sub(s, a + 2, a + 9), 16)); i = a + 10
    elseif c:match("[0-7]") then
      local oct = s:match("^[0-7][0-7]?[0-7]?", a + 1)
      out[#out + 1] = J.utf8_char(tonumber(oct, 8)); i = a + 1 + #oct
    else
      out[#out + 1] = "\\"; i = a + 1
    end
  end
  return concat(out)
end

local function count_nl(s)
  local _, n = s:gsub("\n", "")
  return n
end

-- tokens: {type, value, line}; types: data, var_begin, var_end, block_begin,
-- block_end, name, string, integer, float, op, eof
local function tokenize(src, name)
  src = src:gsub("\r\n", "\n"):gsub("\r", "\n")
  if sub(src, -1) == "\n" then src = sub(src, 1, -2) end -- keep_trailing_newline=False
  local toks = {}
  local pos, line, n = 1, 1, #src
  local line_starting = true
  local function emit(t, v, l) toks[#toks + 1] = {t, v, l} end

  -- lex the inside of {{ }} / {% %} from position p; returns the position after the end tag
  local function lex_tag(p, is_block, start_line)
    local balance = {}
    while true do
      local ws_s, ws_e = find(src, "^%s+", p)
      if ws_s then
        line = line + count_nl(sub(src, ws_s, ws_e))
        p = ws_e + 1
      end
      if p > n then syntax_error(name, start_line, is_block and "missing end of block tag '%}'" or "missing end of print tag '}}'") end
      if #balance == 0 then
        if is_block then
          if sub(src, p, p + 2) == "+%}" then emit("block_end", "", line); line_starting = false; return p + 3 end
          if sub(src, p, p + 2) == "-%}" then
            local _, e = find(src, "^%s*", p + 3)
            local ws = sub(src, p + 3, e)
            emit("block_end", "", line)
            line = line + count_nl(ws)
            line_starting = sub(ws, -1) == "\n"
            return e + 1
          end
          if sub(src, p, p + 1) == "%}" then
            emit("block_end", "", line)
            if sub(src, p + 2, p + 2) == "\n" then line = line + 1; line_starting = true; return p + 3 end
            line_starting = false
            return p + 2
          end
        else
          if sub(src, p, p + 2) == "-}}" then
            local _, e = find(src, "^%s*", p + 3)
            local ws = sub(src, p + 3, e)
            emit("var_end", "", line)
            line = line + count_nl(ws)
            line_starting = sub(ws, -1) == "\n"
            return e + 1
          end
          if sub(src, p, p + 1) == "}}" then emit("var_end", "", line); line_starting = false; return p + 2 end
        end
      end
      local c = sub(src, p, p)
      -- numbers: float first, then integer
      local fl = src:match("^%d[%d_]*%.%d[%d_]*[eE][-+]?%d[%d_]*", p) or src:match("^%d[%d_]*%.%d[%d_]*", p)
        or src:match("^%d[%d_]*[eE][-+]?%d[%d_]*", p)
      if fl and sub(src, p - 1, p - 1) ~= "." then
        emit("float", J.float(tonumber((fl:gsub("_", "")))), line); p = p + #fl
      elseif c:match("%d") then
        local lit = src:match("^0[bB][01_]+", p) or src:match("^0[oO][0-7_]+", p) or src:match("^0[xX][%x_]+", p)
        local v
        if lit then
          local base = ({b = 2, o = 8, x = 16})[lit:sub(2, 2):lower()]
          v = tonumber((lit:sub(3):gsub("_", "")), base)
        else
          lit = src:match("^%d[%d_]*", p)
          local d = lit:gsub("_", ""):gsub("^0+(%d)", "%1")
          -- exact at any length (past 2^53 an lfl.json.Int), as Python's ints
          v = #d > 15 and lfl.json.int(d) or tonumber(d)
        end
        emit("integer", v, line); p = p + #lit
      elseif c:match("[%a_]") then
        local w = src:match("^[%w_]+", p)
        emit("name", w, line); p = p + #w
      elseif c == "'" or c == '"' then
        local q = p + 1
        while true do
          local a = find(src, "[\\" .. c .. "]", q)
          if not a then syntax_error(name, line, "unexpected end of string") end
          if sub(src, a, a) == "\\" then q = a + 2 else q = a; break end
        end
        local body = sub(src, p + 1, q - 1)
        emit("string", unescape(body), line)
        line = line + count_nl(body)
        p = q + 1
      else
        local two = sub(src, p, p + 1)
        local op
        if operators2[two] then op = two elseif operators1[c] then op = c end
        if not op then syntax_error(name, line, fmt("unexpected char %q", c)) end
        if op == "{" then balance[#balance + 1] = "}"
        elseif op == "(" then balance[#balance + 1] = ")"
        elseif op == "[" then balance[#balance + 1] = "]"
        elseif op == "}" or op == ")" or op == "]" then
          local want = table.remove(balance)
          if not want then syntax_error(name, line, "unexpected '" .. op .. "'") end
          if want ~= op then syntax_error(name, line, fmt("unexpected '%s', expected '%s'", op, want)) end
        end
        emit("op", op, line); p = p + #op
      end
    end
  end

  local function strip_text(text, sign, lstrip_ok)
    if sign == "-" then return (text:gsub("%s+$", "")) end
    if sign ~= "+" and lstrip_ok then
      local l_pos = 0
      local q = 0
      while true do
        q = find(text, "\n", q + 1, true)
        if not q then break end
        l_pos = q
      end
      if l_pos > 0 or line_starting then
        local rest = sub(text, l_pos + 1)
        if rest ~= "" and not find(rest, "%S") then return sub(text, 1, l_pos) end
      end
    end
    return text
  end

  while pos <= n do
    local s = find(src, "{[{%%#]", pos)
    if not s then
      emit("data", sub(src, pos), line)
      break
    end
    local text = sub(src, pos, s - 1)
    local kind = sub(src, s + 1, s + 1)
    local sign = sub(src, s + 2, s + 2)
    if sign ~= "-" and sign ~= "+" then sign = "" end
    local text_lines = count_nl(text)
    -- {% raw %} ... {% endraw %}
    local raw_e
    if kind == "%" then
      local _, e = find(src, "^%s*raw%s*%-%%}%s*", s + 2 + #sign)
      if not e then _, e = find(src, "^%s*raw%s*%%}", s + 2 + #sign) end
      raw_e = e
    end
    text = strip_text(text, sign, kind ~= "{")
    if text ~= "" then emit("data", text, line) end
    line = line + text_lines
    if raw_e then
      local start_line = line
      line = line + count_nl(sub(src, s, raw_e))
      line_starting = sub(src, raw_e, raw_e) == "\n"
      -- find {%(-|+|)\s*endraw\s*(+%}|-%}\s*|%}\n?)
      local q = raw_e + 1
      local a, b, esign
      while true do
        a = find(src, "{%", q, true)
        if not a then syntax_error(name, start_line, "missing end of raw directive") end
        local sg = sub(src, a + 2, a + 2)
        if sg ~= "-" and sg ~= "+" then sg = "" end
        local _, e = find(src, "^%s*endraw%s*", a + 2 + #sg)
        if e then
          esign = sg
          if sub(src, e + 1, e + 3) == "+%}" then b = e + 3
          elseif sub(src, e + 1, e + 3) == "-%}" then local _, e2 = find(src, "^%s*", e + 4); b = e2
          elseif sub(src, e + 1, e + 2) == "%}" then b = e + 2; if sub(src, b + 1, b + 1) == "\n" then b = b + 1 end
          else e = nil end
          if e then break end
        end
        q = a + 2
      end
      local body = sub(src, raw_e + 1, a - 1)
      local body_lines = count_nl(body)
      body = strip_text(body, esign, true)
      if body ~= "" then emit("data", body, line) end
      line = line + body_lines + count_nl(sub(src, a, b))
      line_starting = sub(src, b, b) == "\n"
      pos = b + 1
    elseif kind == "#" then
      local start_line = line
      local q = s + 2
      local e
      while true do
        local a = find(src, "#}", q, true)
        if not a then syntax_error(name, start_line, "missing end of comment tag") end
        local prev = sub(src, a - 1, a - 1)
        if a - 1 >= s + 2 + #sign and prev == "-" then
          local _, e2 = find(src, "^%s*", a + 2); e = e2
        elseif a - 1 >= s + 2 + #sign and prev == "+" then
          e = a + 1
        else
          e = a + 1
          if sub(src, e + 1, e + 1) == "\n" then e = e + 1 end
        end
        break
      end
      line = line + count_nl(sub(src, s, e))
      line_starting = sub(src, e, e) == "\n"
      pos = e + 1
    elseif kind == "{" then
      emit("var_begin", "", line)
      pos = lex_tag(s + 2 + #sign, false, line)
    else
      emit("block_begin", "", line)
      pos = lex_tag(s + 2 + #sign, true, line)
    end
  end
  emit("eof", "", line)
  return toks
end
M.tokenize = tokenize

-- for the other parts of the interpreter
M.syntax_error = syntax_error

return M
