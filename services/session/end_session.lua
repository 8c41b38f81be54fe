-- Logout. KEYS[3] session hash, ARGV[5] digest.
-- Returns {'ok'|'missing'|'gone', state, emitted...}.
local key, digest = KEYS[3], ARGV[5]
local s = load(key)
if not s then return {'missing'} end
local state, _, _, _, emitted = settle(s, digest)
local out = {'gone', state}
if state ~= 'expired' and state ~= 'ended' then
  bury(s, digest, 'ended')
  emit('ended', digest, s, 'ended', 0, 0)
  emitted[#emitted + 1] = 'ended'
  out = {'ok', 'ended'}
end
for _, e in ipairs(emitted) do out[#out + 1] = e end
return out
