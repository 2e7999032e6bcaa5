"""PyTorch SDPA against a hand-written attention at decode shapes (one query per row)."""
import torch, time, statistics, math
import torch.nn.functional as F
torch.set_num_threads(1)
def t(fn, n=300):
    for _ in range(20): fn()
    xs=[]
    for _ in range(n):
        s=time.perf_counter(); fn(); xs.append(time.perf_counter()-s)
    return statistics.median(xs)*1e6
H,D=4,48
with torch.inference_mode():
  for b in (2,8,32):
    for L in (60,140):
        q=torch.randn(b,H,1,D); kc=torch.randn(64,H,256,D); vc=torch.randn(64,H,256,D)
        k=kc[:b,:,:L]; v=vc[:b,:,:L]
        mask=(torch.arange(L)[None,:] <= torch.randint(10,L,(b,))[:,None])[:,None,None]
        a=t(lambda: F.scaled_dot_product_attention(q,k,v,attn_mask=mask))
        def man():
            s=(q@k.transpose(-1,-2))*(1/math.sqrt(D))
            s=s.masked_fill(~mask, float("-inf"))
            return s.softmax(-1)@v
        m=t(man)
        y1=F.scaled_dot_product_attention(q,k,v,attn_mask=mask); y2=man()
        print(b,L,"sdpa %.1f us manual %.1f us maxdiff %.2e"%(a,m,(y1-y2).abs().max()))
