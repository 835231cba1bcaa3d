"""pygame_locks.py: a real extension workload for a clean run: Debian's python3-pygame, whose
surface locks (src_c/surflock.c, surface.c) call PyWeakref_GetObject on every lock owner.
PixelArray, surfarray-free buffer views and subsurfaces lock and unlock surfaces thousands of
times. Must give no finding; prints the number of lock operations it made."""
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

pygame.init()
ops = 0
for round_ in range(40):
    surf = pygame.Surface((64, 64))
    sub = surf.subsurface((8, 8, 16, 16))
    for i in range(25):
        pa = pygame.PixelArray(surf)          # locks surf, owner held weakly
        pa[i, i] = (255, 0, 0)
        pa2 = pygame.PixelArray(sub)          # locks the parent through the subsurface
        pa2[0, 0] = (0, 255, 0)
        del pa2
        del pa                                # unlocks
        surf.lock()
        view = surf.get_view("2")             # a buffer export: another lock owner
        del view
        surf.unlock()
        ops += 4
    assert not surf.get_locked()
    del sub, surf
pygame.quit()
print("pygame lock operations:", ops)
