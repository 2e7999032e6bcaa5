"""One TutorEngine step through TorchThreadEngine (what the scheduler calls) against the model call alone, long rows."""
import json, time, torch, statistics
torch.set_num_threads(1)
from miniserve.tutor.agent import GrammarTutorAgent
from miniserve.tutor.engine import TutorEngine, decode_rows
from miniserve.server.continuous_runner import TorchThreadEngine
ag = GrammarTutorAgent.load_default(db_path=":memory:")
eng = TutorEngine(ag.generator, 64)
inner = TorchThreadEngine(eng, 1, TutorEngine.cost, lambda k, n: None)
ps = [p for p in json.load(open("bench/payloads/lab03.json"))["payloads"] if p["length"]=="long"]
for b in (1,2,4,8):
    srcs=[]
    for p in ps:
        srcs += ag.begin_correction(p["sentence"]).sources
    items=[eng.item(s) for s in srcs[:b]]
    items=[type(it)(it.source, it.prompt, 200 - len(it.prompt)) for it in items]  # never done by budget
    rows=inner.prefill(items)
    for r in rows: r.done=False
    for _ in range(5): inner.step(rows)
    ts=[]; ms=[]
    for _ in range(40):
        s=time.perf_counter(); inner.step(rows); ts.append(time.perf_counter()-s)
        for r in rows: r.done=False
    L=torch.tensor([r.length for r in rows]); tok=torch.ones(b,1,dtype=torch.long)
    with torch.inference_mode():
        for _ in range(40):
            s=time.perf_counter(); decode_rows(eng.model,tok,L,eng.caches); ms.append(time.perf_counter()-s)
    print(b, "L", L.tolist(), "step %.3f ms, model only %.3f ms" % (statistics.median(ts)*1e3, statistics.median(ms)*1e3))
    eng.release(rows)
