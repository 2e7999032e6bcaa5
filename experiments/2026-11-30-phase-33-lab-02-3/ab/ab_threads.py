"""A/B: two threads calling agent.correct on lab-02 payloads (as the unbatched server's 2 workers), constrained vs
free decoding, interleaved, 1 torch thread each. Prints requests/s per 8-s run."""
import threading, time, json, sys
import torch
torch.set_num_threads(1)
from miniserve.tutor.generate import Generator
from miniserve.tutor.agent import GrammarTutorAgent
from miniserve.tutor.memory import LearnerMemory
from miniserve.lab.loadgen import default_payloads
sents = [p["sentence"] for p in default_payloads()]
g = Generator.load()
agents = {"constrained": GrammarTutorAgent(g, LearnerMemory(":memory:")),
          "free": GrammarTutorAgent(Generator(g.model, g.tok, g.max_new_tokens, constrained=False), LearnerMemory(":memory:"))}
def run(agent, seconds=8.0, workers=int(sys.argv[1]) if len(sys.argv) > 1 else 2):
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
