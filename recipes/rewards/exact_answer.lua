-- GRPO reward: 1 when the last number in the completion equals the example's
-- reference answer (its last number, or its text when it has none), else 0.
return function(prompt, completion, example)
  local function last_number(s)
    local last
    for n in tostring(s):gmatch("%-?%d+%.?%d*") do last = n end
    return last and tonumber(last)
  end
  local want, got = last_number(example.answer), last_number(completion)
  if want then return (got ~= nil and got == want) and 1 or 0 end
  return (completion:match("^%s*(.-)%s*$") == tostring(example.answer):match("^%s*(.-)%s*$")) and 1 or 0
end
