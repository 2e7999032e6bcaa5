"""Each lab-03 payload alone through TutorEngine: wall time from prefill to its last row done, and steps."""
import json, time, torch, statistics
torch.set_num_threads(1)
from miniserve.tutor.agent import GrammarTutorAgent
from miniserve.tutor.engine import TutorEngine
ag = GrammarTutorAgent.load_default(db_path=":memory:")
gen = ag.generator
eng = TutorEngine(gen, 64)
ps = json.load(open("bench/payloads/lab03.json"))["payloads"]
res = {"short": [], "long": []}
steps = {"short": [], "long": []}
for p in ps:
    inf = ag.begin_correction(p["sentence"])
    s = time.perf_counter()
    rows = eng.prefill([eng.item(x) for x in inf.sources]) if inf.sources else []
    n = 0
    while rows and not all(r.done for r in rows):
        eng.step_corrections(rows); n += 1
    eng.release(rows)
    res[p["length"]].append((time.perf_counter() - s) * 1e3); steps[p["length"]].append(n)
for k in res:
    xs = sorted(res[k]); q = lambda f: xs[int(f * (len(xs) - 1))]
    print(k, len(xs), "p50 %.1f p95 %.1f max %.1f ms" % (q(.5), q(.95), xs[-1]), "steps p50", sorted(steps[k])[len(xs)//2], "p95", sorted(steps[k])[int(.95*(len(xs)-1))])
