-- updateProfile: the caller edits their own city; it alternates, so every
-- request is a real change (an UPDATE, a re-read and an audit event).
-- args: the caller's email
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.headers(true)
local cities = { "Oslo", "Bergen" }
local counter = 0
local email = "user0@bench.example"

function init(args)
  email = args[1] or email
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"query":"mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { city updatedAt } }",' ..
    '"variables":{"i":{"email":"%s","city":"%s"}}}',
    email, cities[counter % 2 + 1])
  return wrk.format(nil, nil, nil, body)
end

done = common.done
