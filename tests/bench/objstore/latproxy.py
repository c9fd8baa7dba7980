"""TCP proxy adding a fixed one-way delay each way (RTT = 2*delay), no bandwidth cap.
usage: latproxy.py LISTEN_PORT TARGET_PORT ONE_WAY_MS [DOWN_MB_PER_S]"""
import asyncio, sys, time
LP, TP, D = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000
RATE = float(sys.argv[4]) * 1e6 if len(sys.argv) > 4 else 0  # bytes/s shared by all downloads
NEXT = [0.0]
async def pipe(r, w, down=False):
    q = asyncio.Queue()
    async def rd():
        while True:
            b = await r.read(1 << 18)
            await q.put((time.monotonic() + D, b))
            if not b: return
    async def wr():
        while True:
            due, b = await q.get()
            dt = due - time.monotonic()
            if dt > 0: await asyncio.sleep(dt)
            if not b:
                try: w.write_eof()
                except Exception: pass
                return
            if down and RATE:
                t0 = max(time.monotonic(), NEXT[0]); NEXT[0] = t0 + len(b) / RATE
                dt = NEXT[0] - time.monotonic()
                if dt > 0: await asyncio.sleep(dt)
            w.write(b); await w.drain()
    try: await asyncio.gather(rd(), wr())
    except Exception: pass
    finally:
        try: w.close()
        except Exception: pass
async def handle(cr, cw):
    try: sr, sw = await asyncio.open_connection("127.0.0.1", TP)
    except Exception: cw.close(); return
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw, True))
async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", LP, backlog=512)
    async with s: await s.serve_forever()
asyncio.run(main())
