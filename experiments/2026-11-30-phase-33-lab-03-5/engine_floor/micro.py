"""Decode step and prefill time against rows and lengths, model only (decode_rows / prefill_rows), NT torch threads."""
import time, torch, statistics
import os; torch.set_num_threads(int(os.environ.get("NT","1")))
from miniserve.tutor.generate import Generator
from miniserve.tutor.engine import decode_rows, prefill_rows
g = Generator.load(); m = g.model
caches = m.new_caches(64, m.cfg.max_seq_len)
def t(fn, n=200):
    for _ in range(10): fn()
    xs=[]
    for _ in range(n):
        s=time.perf_counter(); fn(); xs.append(time.perf_counter()-s)
    return statistics.median(xs)*1e3
for b in (1,2,4,8,16,32,64):
    for L in (20,60,120):
        tok = torch.ones(b,1,dtype=torch.long); lengths=torch.full((b,),L)
        print(f"decode b={b:2d} L={L:3d}: {t(lambda: decode_rows(m,tok,lengths,caches)):.2f} ms")
for b in (1,4):
    for T in (10,30,60,90):
        idx=torch.ones(b,T,dtype=torch.long); lengths=torch.full((b,),T)
        print(f"prefill b={b} T={T}: {t(lambda: prefill_rows(m,idx,lengths,0,caches),50):.2f} ms")
