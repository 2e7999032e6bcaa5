"""In-process open-loop replay: scheduler + engine, no HTTP. Poisson arrivals at RATE for DUR s."""
import asyncio, json, random, sys, time, statistics, torch
torch.set_num_threads(1)
from miniserve.server.batching.continuous import ContinuousBatchScheduler
from miniserve.server.continuous_runner import TorchThreadEngine
from miniserve.tutor.agent import GrammarTutorAgent
from miniserve.tutor.engine import TutorEngine
RATE=float(sys.argv[1]); DUR=float(sys.argv[2]); MR=int(sys.argv[3]); SEED=int(sys.argv[4]) if len(sys.argv)>4 else 0
ag = GrammarTutorAgent.load_default(db_path=":memory:")
eng = TutorEngine(ag.generator, MR)
ps = json.load(open("bench/payloads/lab03.json"))["payloads"]
rng = random.Random(SEED)
steps=[]; admits=[]; calls=[]; hops=[]
lat = {"short": [], "long": []}
async def main():
    inner = TorchThreadEngine(eng, 1, TutorEngine.cost, lambda k, n: None)
    for name in ("prefill", "step"):
        f = getattr(inner, name)
        def w(*a, f=f, name=name):
            s = time.perf_counter(); o = f(*a); calls.append((name, s, time.perf_counter())); return o
        setattr(inner, name, w)
    sched = ContinuousBatchScheduler(inner, max_running=MR, max_queue=256, max_prefill_tokens=512, cost=TutorEngine.cost, on_step=lambda r, t: steps.append((r, t)), on_admit=lambda w: admits.extend(w))
    orig = sched._engine_call
    def ec(*a):
        s = time.perf_counter(); o = orig(*a); hops.append((s, time.perf_counter())); return o
    sched._engine_call = ec
    await sched.start()
    async def one(p):
        s = time.perf_counter()
        inf = ag.begin_correction(p["sentence"])
        if inf.sources:
            outs = await sched.submit_all([eng.item(x) for x in inf.sources])
            await asyncio.to_thread(ag.finish_correction, inf, [o.text for o in outs])
        lat[p["length"]].append((time.perf_counter() - s) * 1e3)
    t0 = time.perf_counter(); t = 0.0; tasks = []
    while True:
        t += rng.expovariate(RATE)
        if t > DUR: break
        d = t0 + t - time.perf_counter()
        if d > 0: await asyncio.sleep(d)
        tasks.append(asyncio.create_task(one(rng.choice(ps))))
    await asyncio.gather(*tasks)
    await sched.shutdown()
asyncio.run(main())
allv = sorted(lat["short"] + lat["long"])
q = lambda xs, f: sorted(xs)[int(f * (len(xs) - 1))]
print(f"mr={MR} rate={RATE} n={len(allv)} p50 {q(allv,.5):.0f} p95 {q(allv,.95):.0f} short p95 {q(lat['short'],.95):.0f} long p50 {q(lat['long'],.5):.0f} p95 {q(lat['long'],.95):.0f}")

import statistics as st
print("steps", len(steps), "mean rows %.1f" % st.mean(r for r, _ in steps), "median step ms %.2f" % (st.median(t for _, t in steps)*1e3), "sum step s %.2f" % sum(t for _, t in steps), "admit wait p50 %.1f p95 %.1f ms" % (q(admits,.5)*1e3, q(admits,.95)*1e3))

pf=[e-s for n,s,e in calls if n=="prefill"]; stp=[e-s for n,s,e in calls if n=="step"]
hw=sum(e-s for s,e in hops)
gaps=[hops[i+1][0]-hops[i][1] for i in range(len(hops)-1)]
print("engine calls %d, in calls %.2f s; prefills %d sum %.2f s mean %.2f ms; steps %d sum %.2f s" % (len(hops), hw, len(pf), sum(pf), st.mean(pf)*1e3, len(stp), sum(stp)))
small=[g for g in gaps if g<0.005]
print("gaps<5ms: n %d median %.3f ms mean %.3f ms sum %.2f s" % (len(small), st.median(small)*1e3, st.mean(small)*1e3, sum(small)))
