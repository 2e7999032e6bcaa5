"""A/B: run 20's and run 23's weights, both decoding constrained, two threads calling agent.correct (as the
unbatched server's 2 workers), interleaved 8-s runs; also tokens generated per request."""
import threading, time, json
import torch
torch.set_num_threads(1)
from miniserve.tutor.generate import Generator
from miniserve.tutor.agent import GrammarTutorAgent
from miniserve.tutor.memory import LearnerMemory
from miniserve.lab.loadgen import default_payloads
sents = [p["sentence"] for p in default_payloads()]
agents = {"run20": GrammarTutorAgent(Generator.load("/work/runs/run20w"), LearnerMemory(":memory:")),
          "run23": GrammarTutorAgent(Generator.load(), LearnerMemory(":memory:"))}
def run(agent, seconds=8.0, workers=2):
    stop = time.perf_counter() + seconds
    counts = [0] * workers
    def w(k):
        i = k
        while time.perf_counter() < stop:
            agent.correct(sents[i % len(sents)]); i += workers; counts[k] += 1
    ts = [threading.Thread(target=w, args=(k,)) for k in range(workers)]
    [t.start() for t in ts]; [t.join() for t in ts]
    return sum(counts) / seconds
for a in agents.values(): run(a, 1.0)
res = {k: [] for k in agents}
for rep in range(3):
    for k, a in agents.items():
        res[k].append(round(run(a), 1))
print(json.dumps(res))
for k, a in agents.items():
    t = time.perf_counter()
    for s in sents: a.correct(s)
    print(k, "one thread, ms per request", round((time.perf_counter() - t) * 1e3 / len(sents), 2))
