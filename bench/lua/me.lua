-- me: the caller's own account (same fields the baseline returns).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.headers(true)
wrk.body = '{"query":"{ me { id email role city organization designation mobile createdAt updatedAt } }"}'
done = common.done
