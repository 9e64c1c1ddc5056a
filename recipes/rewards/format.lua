-- GRPO reward: 1 when the whole completion matches the Lua pattern
-- example.format_pattern or the recipe's reward_format_pattern (default: a
-- number alone, "^%s*%-?%d+%.?%s*$"), else 0. The pattern is passed in
-- example.format_pattern by the grpo step.
return function(prompt, completion, example)
  local pat = example.format_pattern or "^%s*%-?%d+%.?%s*$"
  return completion:find(pat) and 1 or 0
end
