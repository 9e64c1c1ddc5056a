-- GRPO reward: 1 for a completion of at most example.length_target characters
-- (the recipe's reward_length_target, default 16), falling as target / length
-- beyond it: favours short answers.
return function(prompt, completion, example)
  local target, n = example.length_target or 16, #completion
  if n <= target then return 1 end
  return target / n
end
