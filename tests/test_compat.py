"""Files written by earlier releases keep decoding after a new model ships.

Each entry is a real .gqc file made by a shipped model from ``source()`` (a synthetic image,
so no image data is committed), with the PSNR its decode had when it was written. A new
release ships its weights under a new model name and keeps the old ones, so these files
must stay decodable; if a model is ever retired on purpose, its files must fail with a
clear one-line error instead (and this list says so).
"""
import base64

import numpy as np
import pytest

import bitstream
import gqcodec
from gqcodec import zoo
from gqcodec.metrics import psnr_rgb

pytestmark = pytest.mark.skipif(not zoo.REGISTRY_FILE.exists(), reason="no shipped model")


def source(h=48, w=64):
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([120 + 80 * np.sin(xx / 17), 100 + 60 * np.cos(yy / 11), (xx + yy) % 256 * 0.5 + 60], -1)
    img = np.clip(img, 0, 255).astype(np.uint8)
    img[:, :24] = (90, 140, 200)
    return img


# (model, format version, PSNR when written, file); written by gqcodec 2026-11 with
# gqcodec.compress(source(), quality=1, adaptive=False) and gqcodec.compress(source(), quality=4)
FILES = [
    ("gq-n128-c320", 1, 21.41,
     "iUdRQwEQEBADAQEBAgAAAGdxLW4xMjgtYzMyMAAAAADh+0A6OvvlXgAAAAAAAAAAQAAAADAAAAADAAAABAAAABgAAAAAAAAALAAAAHZr"
     "AtmaF5ulRTzW1wAAAABozP2Znqkhu53mIIQ6/3WgDy+usunLB1cw+tAgRfCeyzXcCeKrYR2gf1vaGjNpQ3Q="),
    ("gq-n128-c320", 2, 24.54,
     "iUdRQwIQEBADAQEEBgABAGdxLW4xMjgtYzMyMAAAAADh+0A6OvvlXgAAAAAAAAAAQAAAADAAAAADAAAABAAAADMAAAAAAAAAcAAAAD0l"
     "rkyaF5ulRTzW1wAAAAD9WHPsAQABAFVVAQD//6oqAIAAADgNxJPEGC3qiaerId+uQ0vXDGm7zixWbEDfW0xDivS/79SuPMwcsziuoTuJ"
     "qck9fKgDqv3fRsAgrLSpEC9nl5bikBfXcbSo/dRff3VxX2TH1c8++h8hb0VtYrJQjMFsfw=="),
    ("gq-n128-c320-r2", 1, 21.68,
     "iUdRQwEQEBADAQEBAgAAAGdxLW4xMjgtYzMyMC1yMgDk1BEuGdgdygAAAAAAAAAAQAAAADAAAAADAAAABAAAABgAAAAAAAAALAAAAMKs"
     "tUqBfEMma+uJHgAAAAAEfaEpbZzlvH5fJm5dLgWo9eIsTwdpzlrpmOEhv303WYXmFfWcxPjrnRdX/QTu23Q="),
    ("gq-n128-c320-r2", 2, 25.06,
     "iUdRQwIQEBADAQEEBgABAGdxLW4xMjgtYzMyMC1yMgDk1BEuGdgdygAAAAAAAAAAQAAAADAAAAADAAAABAAAADMAAAAAAAAAcAAAABqJ"
     "+AqBfEMma+uJHgAAAADcTZl1AQABAKoqqir//1VVVVUAAIBC+5q8IywrPhZ+JGFszr6HaAUNXH9d1ofne7+Yky3ocfjGoeu14YKGuglR"
     "9+7Ghb0ht9LAJdddtJDuC10GQB76lsw9ap09OEyR9B2GTFbKdp9IMCOfE3BWRTbPvPq5gg=="),
    ("gq-n128-c320-r2", 3, 28.51,  # quality 10: a 2^18 codebook, escape coding (gqcodec.compress(source(), quality=10))
     "iUdRQwMSEBADAQEKFAABAmdxLW4xMjgtYzMyMC1yMgDk1BEuGdgdygAAAAAAAAAAQAAAADAAAAADAAAABAAAAJIAAAAAAAAAfAEAAA/n"
     "2lKBfEMma+uJHgAAAACqZbYRAQABAAEAAQABAAEAAQCqqqqqAQCqqqqqAQABAFVVAQABAAEAAQABAP//AABVVVVVq2pVVVWVAIAAgACA"
     "AGAA4KuqAIAAQABAAQCrqgEAq6oBAAEAKqA8IRn1vvoaK4ai4NzJMQtvXnNDAVqCY7UJscF5UR+weVXRvVCppnmGtOcJfWxQjhPeUshd"
     "tr5MYyp23SbdTphCy5JNDvnf19VllKJ257N6BzdYgJPo0VfDqkGNbuhTb/pMwLTRtEMRX2+dIVmsqjLX6YvuIXiTcMRbwhCIkBmxZC+r"
     "aj/n57Gw4xprQ9Qk0P7wbY/oMP/DGSYL+06UZ4NYONn0Y71FklRITyGJh8rINpsociRxk4srV2BxSHWwxrOWWwE3++Brg8cdPhzYvYtx"
     "4vKZ4z+QqN/nBV328DARdwiv/AVpjI07yUktcEGHm1PKK5V+oJ/rN23Rvdl+5cJwdVWX4plt9Q0wrkoD+Xh4WKBPfqTC0uT8vZ5g5E2L"
     "suWXFmuO8sY="),
    ("gq-n128-c320-r2", 3, 28.77,  # quality 10 since 2026-12: a 2^20 codebook, 4 escape bits
     "iUdRQwMUEBADAQEKFAABBGdxLW4xMjgtYzMyMC1yMgDk1BEuGdgdygAAAAAAAAAAQAAAADAAAAADAAAABAAAAJEAAAAAAAAAnAEAALx9"
     "YmOBfEMma+uJHgAAAABUEFXMAQABAAEAAQABAFVVAQBVVaqqVVUBAKqqVVUBAFVVAQABAAEAAQABAP//AACragBAqyoAQKtqXXTRRWZm"
     "ACC3bUmSZmYBAAEAAQBVVQEAAQABAAEASS2lJacs8HHYjQ8JlPzziFUKUFxpC8CrrIiztDuKRovC1G4x+Rug8nOQ0+3uxIYXCrUwpY6o"
     "Ppvk3LojQt016gsMVyJtCNpH7z1whV7FA/mNfy1jDPQ4/x8Y2ZChH6OFKfNauVIofx+UaVu5AFBXHkIXIjQkqcM0tLE6L2q04N/VJszz"
     "NVzP04tlL9pb9uH1knPNGS4uvkvD3LRc3hqUCodak9+sw3ppRqbJAyUzZwEUxMTORTweKdGmf7NIHyVZF3ovZsWvNCU7fwZ4i63Jmcs+"
     "cQzC7ezH/lGJ/mT9cNqbopMFvEoabHlbw2p5BEEaLLCdD14/fN3eh3k5Q7lKUXvsHZPqZ6mZ5VdG++1jzdOo2KGvghZ5hlm7dCw3i9Gt"
     "8uRIFphV9bKFNWBAlKfn2PyylfCaQ6sttLIIHLGQeemyUSxKAEwSqQ=="),
    ("gq-n128-c320-r3", 1, 21.51,  # third release, 2026-12: q1 dense, q4 adaptive, q10 (2^20 codebook)
     "iUdRQwEQEBADAQEBAgAAAGdxLW4xMjgtYzMyMC1yMwDIscMIlf/3MAAAAAAAAAAAQAAAADAAAAADAAAABAAAABgAAAAAAAAALAAAAGmx"
     "KIT7d0joMcG95gAAAAAFk9QLVWIJvCqCVxDwVQ8TFeZ4cd5QFAu/M6Zk4YLrhLyDvXzCcfbL5pDu/lS4/sk="),
    ("gq-n128-c320-r3", 2, 24.91,
     "iUdRQwIQEBADAQEEBgABAGdxLW4xMjgtYzMyMC1yMwDIscMIlf/3MAAAAAAAAAAAQAAAADAAAAADAAAABAAAADIAAAAAAAAAcAAAAIGu"
     "Lb77d0joMcG95gAAAACBNKL+AQABAAEAzMz//wEAmZkAALDGOENDsYAIEmQ5MOlYXqR4FV2ZN7ydO2ZjCr8c7trkOwCa5J6dKNSLaiEm"
     "+RQYVOBoo8tP7w+hwd2IXgjUuO+YQrmEOGX2OaozmpJYfZf2S2CR0GE9u91eyBOQ3S6OzQ=="),
    ("gq-n128-c320-r3", 3, 29.11,
     "iUdRQwMUEBADAQEKFAABBGdxLW4xMjgtYzMyMC1yMwDIscMIlf/3MAAAAAAAAAAAQAAAADAAAAADAAAABAAAAJUAAAAAAAAAoAEAAJlz"
     "i3r7d0joMcG95gAAAADtCsvPAQABAAEAAQABAFVVAQABAFVVVVWqqv//AQABAFVVAQABAAEAAQABAP//AACrKqsqAECrKqtqF13RRaOL"
     "ZmYcx0mSAQAAQABAAQBVVQEAAQABAAEAmHaSm1lFG8+7QHNBvHJpq8JurYwII+QeuhC81j/Mk3S8arrR6gGHAKeDI6o8fRW0LwdUd5SJ"
     "Sa72gI7uy2taF/8vCEGeGqDjNbRRsDJsYoaA1ROu5EWnYQftltTb8+jCYxCq8xAjCs0BpjL5h+WM83BYb9J4/klL5NlaPy4oMFMWS5JF"
     "/LxrCdQ/rw+tDUHvs/mk8kFRvl63tUHN6XJvYxEonB7+zfzV+HEcKNOn5/d6s+76FWf06jSZ5kw3AVv9RXRYFqXqvfVTAp7GF/6p4lDW"
     "l3alZ/2a3qYDWYqhuvDZPFvEPFyHakU6Lnj40GWS0o0DJrabpg0LmZFn3BPugaf/AUOLCk/MVN0CagA7WSnQSkmE2v8V0odsZ3F7SXYr"
     "uldjwZ5G/2RYc6e/Iii8MGw4SA3ELFo2v7Z0EGx1dRQq85e1RQeAmABGPlQ="),
    ("gq-n128-c320-r4", 1, 21.43,  # fourth release, 2026-12: q1 dense, q4 adaptive, q10 (2^20 codebook)
     "iUdRQwEQEBADAQEBAgAAAGdxLW4xMjgtYzMyMC1yNAD+v24eatuC/AAAAAAAAAAAQAAAADAAAAADAAAABAAAABgAAAAAAAAALAAAAGeh"
     "7+I6HWtzgOm9NQAAAACoAR6FoTlBuzJ7rkcilj/AuEpOxxGLJxHle9r1hsmg8a8HArjXE5D2H9rCUJB4NhQ="),
    ("gq-n128-c320-r4", 2, 25.24,
     "iUdRQwIQEBADAQEEBgABAGdxLW4xMjgtYzMyMC1yNAD+v24eatuC/AAAAAAAAAAAQAAAADAAAAADAAAABAAAADIAAAAAAAAAcAAAAGge"
     "Hss6HWtzgOm9NQAAAACn6RJXAQABAAEA/////wCAAIAAAKUarz/UlKxvx4sBmYmXXEPbtvQIAdDbj0QX0NZoAAkpv1XiZO2DQ2hEa/7e"
     "VwWyBsWOvLKXYGRXKG6fJEiDvttCRxZu0IQ5GIsEj5YaNoAjd/o5iNZQhqXkcXFouvPtCQ=="),
    ("gq-n128-c320-r4", 3, 29.49,
     "iUdRQwMUEBADAQEKFAABBGdxLW4xMjgtYzMyMC1yNAD+v24eatuC/AAAAAAAAAAAQAAAADAAAAADAAAABAAAAJMAAAAAAAAAnAEAAIyz"
     "ik86HWtzgOm9NQAAAAB7WRufAQABAAEAAQABAAEAVVVVVVVVAQD//6qqAQABAFVVAQABAAEAAQABAP//AACrKgEAVVVVFQCAVVWMLgCA"
     "VVWrqgCAAIAAQAEAAQBVVQEAAQABAAEA90DBEOsCqAsc1jPpaJ5W9tXgiuP7c4QqbjeZt40ED6sCKijT3RQF+65n+Xh/ToXbGNj3ma/X"
     "NWmX1do/Y8BYuHsPcCxLgIOuqHRqCSN6zaWqHMumlK6DuzvfU5LtcRWUH1EqwLmZ8pNyh5JxxMa5r7eJt1XP93ANkU5lRj/2/BbeYho+"
     "92LdYPpmGhBu73rwCPeEvA7d5DCfyU55UPdC3CvhyxgFx1En1QRaoq7Jl9E/rZs8f0uE403BEkGLyQHBLSIqpQDePxO24FXQTUAL6/+T"
     "mPvaSGjH3tnke7+32Lu6R9BO5xTjqKBaGaxWJiiNXwAkza1X++HWPt9W9cyKTY/qcDyiuNnBdPFqFDGT/Zweo9bB2ubsVyTiWAWDVHoD"
     "E8kRKdwDJwCWmRzhP+ZPxTLJCVwITZ+lUhBWPUxYhfY/PBkP5P5pOw=="),
    ("gq-n128-c320-r5", 1, 21.47,  # fifth release, 2026-12: q1 dense, q4 adaptive, q10 (2^20 codebook)
     "iUdRQwEQEBADAQEBAgAAAGdxLW4xMjgtYzMyMC1yNQDUODRiWB9NdAAAAAAAAAAAQAAAADAAAAADAAAABAAAABgAAAAAAAAALAAAAKv/"
     "E7s0ImbXjEY+XwAAAAD2J6ULPsNL017nZT+3VNfzO8AZsn4zZrNszfhwca7q9hQwARIKMPSo29RA8hTcYdk="),
    ("gq-n128-c320-r5", 2, 25.58,
     "iUdRQwIQEBADAQEEBgABAGdxLW4xMjgtYzMyMC1yNQDUODRiWB9NdAAAAAAAAAAAQAAAADAAAAADAAAABAAAADMAAAAAAAAAcAAAAD8s"
     "LO00ImbXjEY+XwAAAAAWwgOrAQABAAEA/7//////AEAAAKwmPC8irZsQihy7lvKbRVpmDD2VyIO+OqDtsow6MrWhnoQB+2sIw0VOb4cl"
     "bCVKpkzztUAlWtK71IcGsNJ8r8kWuNG3TG9xVNR1ijT/iP6+Ul6IhFQrScg9+fuaKExikQ=="),
    ("gq-n128-c320-r5", 3, 29.79,
     "iUdRQwMUEBADAQEKFAABBGdxLW4xMjgtYzMyMC1yNQDUODRiWB9NdAAAAAAAAAAAQAAAADAAAAADAAAABAAAAIwAAAAAAAAAmAEAAPOK"
     "Aek0ImbXjEY+XwAAAAAoneqiAQABAAEAAQBVVQEAVVVVVVVVAQD//1VVAQABAFVVAQABAAEAAQABAP//AAAAQABAVVVVFRdd0UXNTMdx"
     "AGAAgGZmAQAAQABAAQBVVQEAAQABAAEAb0SGJjJy9JzReCqSYJHxHwv82+mpQZ/Q8ooeusZu79ZSSCmtv27rSCKn/010bVk697oRvg49"
     "XJAkucz5ymFyOYWv5M8KqGNvN9qVDG3ubVrQJnOzrAItjXAg0HsZaDteoO6f/uad20f4AYBo3BrofZ1nbLr5dTurcli3xBgjd6zw7jMd"
     "o9Rxo4XSX2iUZhghFKcg8xwLGqCba89z3tVtVVIG43BvbjHvoyXcjiiTg4aa75KQw00QcHEzgUtv0BlOvPy11UOw/8l/1t4FpKeJH7hd"
     "UmjWvoe4QozfGJxivedRV8SdrjsuBkXGjgHAEPi84XNlLwxIjGfaiIcO4Qomxm9Cn797qISKEIoJygKWLAzUSeN9raVuedpvYUkaI9e5"
     "2Gs0xh3+EWDsbJnPJsnw14nVIhtfTPmKklpHd93LRg4AKKz8"),
    ("gq-n128-c320-r6", 1, 21.50,  # sixth release, 2026-12: q1 dense, q4 adaptive, q10 (2^20 codebook)
     "iUdRQwEQEBADAQEBAgAAAGdxLW4xMjgtYzMyMC1yNgDr4YiHKYesrQAAAAAAAAAAQAAAADAAAAADAAAABAAAABgAAAAAAAAALAAAAO1I9+"
     "9+vyDD3pogfAAAAABdivoVIi9h0zXDvnUB0sPU6CSlI5cU05H+5pKeIdyDZElkaLB5oLY0POo/iMbf4Qg="),
    ("gq-n128-c320-r6", 2, 25.64,
     "iUdRQwIQEBADAQEEBgABAGdxLW4xMjgtYzMyMC1yNgDr4YiHKYesrQAAAAAAAAAAQAAAADAAAAADAAAABAAAADMAAAAAAAAAcAAAADglT/"
     "x+vyDD3pogfAAAAABTJgUcAQABAAEA////v/+/AIAAABl+ZjyPgZ3YDlzS98+8ulnJAGaHnuMnsgBWAeAV6JCrXIGX/b3iBbd1YY7CEBm/"
     "e5n8O5PZu+sImEaDlrjshQIajZIfS1e5h0OX3r32w1gKJ2kZ9EoQypHEH46+n+x9hQ=="),
    ("gq-n128-c320-r6", 3, 29.95,
     "iUdRQwMUEBADAQEKFAABBGdxLW4xMjgtYzMyMC1yNgDr4YiHKYesrQAAAAAAAAAAQAAAADAAAAADAAAABAAAAJgAAAAAAAAAmAEAAOkTs0"
     "9+vyDD3pogfAAAAACTRPsOAQABAAEAAQAAgAEAAIABAAEAAIABAP////8AgAEAAIABAAEAAQAAgP//AAAAQFUVqyoBANFFF11mZpqZZmar"
     "qquqt21mZgCAAECrqgEAAQABAAEAr9M2j1dzzEQpAQTdb4AxbKhtZlpzwn2Wf93a1WH05b6oTPhzSej3wn+AsEqRmIria/CQ/sEXGWEL3v"
     "vM2EE9NY79F1+xPqo0y3Ddh4jzhHtK3V3TJZ20GgsK1Il0mM/yJYWFSjUzc+1vpC4V8CNlnKTd8eOPZqyZhh4gG/DNiXKrUq6G6apEZwjB"
     "4VZq0LvsCz9qp6D11VvT+86trUt1duC52TuSyGKmPJ7n+gXBY1D0yUd+2Arxsh6TxUcUuqLvYU0Fs7v5wDAb9YRl+qPNpL39T/ohyFsFBn"
     "r3SlRJibIfHoLk6ewaNtp4oSNKIM7dti2lZibqFavB/shfh+E6/uMTydYWDDArjXO4qKn5kuq+oyuMv9ly86a6lVN5vG9s4U+el+6NU3N9"
     "3C+8zplOjtW+fy4KSAWe6xbDdK3XmHAmxFIu"),
    ("gq-n128-c320-r7", 1, 21.51,  # seventh release, 2026-12: q1 dense, q4 adaptive, q10 (2^20 codebook)
     "iUdRQwEQEBADAQEBAgAAAGdxLW4xMjgtYzMyMC1yNwCpEHnafXKtJAAAAAAAAAAAQAAAADAAAAADAAAABAAAABgAAAAAAAAALAAAAELDqX"
     "Otp6F+50O62gAAAABHkQ4wRAp4u7tMIk8cBeD6rQH/QRtrz1xMhjvPm1Fzzz4P8VjspAFY9yx1t1KcqSY="),
    ("gq-n128-c320-r7", 2, 25.90,
     "iUdRQwIQEBADAQEEBgABAGdxLW4xMjgtYzMyMC1yNwCpEHnafXKtJAAAAAAAAAAAQAAAADAAAAADAAAABAAAADMAAAAAAAAAcAAAAMG6wp"
     "Ktp6F+50O62gAAAACZi/zOAQABAAEAAID//wEAAIAAAKzRpDg4rsGdV2rvztgxvoz3T7cE2PH4rc2caUlTUTjyDoUoCmb/X2QuWhd6Bc8h"
     "KG+T2EJxRa4k8stIdxdb2Wc9zVKZZ8O1O4NgqksqGknkuI6IBhaqOf+b+bxZhKkzRQ=="),
    ("gq-n128-c320-r7", 3, 30.04,
     "iUdRQwMUEBADAQEKFAABBGdxLW4xMjgtYzMyMC1yNwCpEHnafXKtJAAAAAAAAAAAQAAAADAAAAADAAAABAAAAJMAAAAAAAAAlAEAAK4SPE"
     "Wtp6F+50O62gAAAAAlZpBFAQABAAEAAQBVVVVVAQBVVQEAAQBVVf//AQABAFVVAQBVVQEAVVUBAKqqAABVVasqAEBVFYwuAIAzMzmOOY6r"
     "qgCgMzNmZpqZAEAAgAEAAQABAAEAXvf3jLv6m1nXfNSMd3N9QqOMojrv8X9KT/G6Sl8z4y5GrHNezu7faC5PoBlVsa4Psg6ftM3kSHroMA"
     "gDlqexlsII+40arm8o0/85/gzXoMOoA2BsPX6oI+m0JRzuHwkHoXNhxrLEtGf2RzdDWWLcHHW42qFWsPoK/RShBlrxlDR7B1FyaYF3SywG"
     "svHrDRQfrKuwMAVxW5vHOAjCz2ORRIkkFk4E7Z7qDnxBKfgJpha4efKYL0eC/xK9NlIVkPh1LWiyVRmopFA7f8AiKvUcBHp6YFKbLPE6/4"
     "irApdnu9HYeZd+5XC01VxKrFKbtx72cWmTJzABuC5BQcTj/k/0Qq7ro3Xe9dS85q7NQFizchkkBbIRxUW+f7sL+W7wbI0DXjrdf7wgCDrd"
     "+1KaE8FKxvoVgxl+CcGS/QRtRgAAAAA="),
    ("gq-n128-c320-r8", 1, 21.48,  # eighth release, 2026-12: q1 dense, q4 adaptive, q10 (2^20 codebook)
     "iUdRQwEQEBADAQEBAgAAAGdxLW4xMjgtYzMyMC1yOADE/O46oKmY3wAAAAAAAAAAQAAAADAAAAADAAAABAAAABgAAAAAAAAALAAAAPmfeq"
     "MYqhGgLu7B7gAAAADgtCoNy/77umQ6yJ3W5kz9y7znBBlGkx2TxjolPf2RnndU3Cd1aOdSFNFhahZCouU="),
    ("gq-n128-c320-r8", 2, 26.04,
     "iUdRQwIQEBADAQEEBgABAGdxLW4xMjgtYzMyMC1yOADE/O46oKmY3wAAAAAAAAAAQAAAADAAAAADAAAABAAAADUAAAAAAAAAdAAAABHyhf"
     "oYqhGgLu7B7gAAAAD/UHAUAQABAAEAVVX//6oqAIAAABtglyUcIELM5TIwUIsmNPp+glrRQvypLCljjkhaB1R6HSoBQ4hoQfj7kET7/WlN"
     "nVgv9GDxsjvlpXk9ClaVO8EDeKoyV5jXvo1zb50VvAYXmT5qEU7bQrZH9AL0n+IoNgh+7Pg="),
    ("gq-n128-c320-r8", 3, 30.23,
     "iUdRQwMUEBADAQEKFAABBGdxLW4xMjgtYzMyMC1yOADE/O46oKmY3wAAAAAAAAAAQAAAADAAAAADAAAABAAAAI4AAAAAAAAAjAEAAE7rBH"
     "gYqhGgLu7B7gAAAAAiWV/aAQABAAEAAQAzMzMzAQAzMwEAAQABAP//AQABAAEAMzMBAAEAZmYBADMzAAAAQKsqVRVVFYwuzUwAgMdxOY45"
     "jquqAQAAgAEAAECrqgEAAQABAAEA31oqO8ZJo7kNrxb9yR3tCTJ+G/z7bSR7l6tV9/IyR4KMT46Jrx+Vdz8+IXcJhs9hRFKnnO9xBlTCCJ"
     "Qv9psTgtGgAkK/3ivRb3SCQH0Pa3K5hsVw/pAvO15q3vvOsiz2MkFlLbQoPcdush/Tm/scgH4MFiTcRFlqlnqkmSPqy35/4JhjBzMFUHyF"
     "uA6vfxM6lRKLEV6849dZJcLmlZObqTmAzB0Zqp88yObqkxsitUpjFOXhg2Z0FIusHUAWF2y0GwpyfLCmuvSBfEjslkHmQfHOq6G894IKSm"
     "gMjxp1CDUXxgOVuBYEk0yI8WX910PoPQn2REh9OYb/9ytjxjpxma8qqixtQD4urg30qqbAWiyN0noobRcwBkbtNvSa2Y9jIYMS7FCLgjZe"
     "QqnUY7Rx2c8YJlicWdiG"),
    ("gq-n128-c320-r9", 1, 21.51,  # ninth release, 2026-12: q1 dense, q4 adaptive, q10 (2^20 codebook)
     "iUdRQwEQEBADAQEBAgAAAGdxLW4xMjgtYzMyMC1yOQCFNWjmXNKLUgAAAAAAAAAAQAAAADAAAAADAAAABAAAABgAAAAAAAAALAAAAEUibW"
     "lM3BTTU+qwdgAAAAB8YMJRXHI1u8QWdyxy6XO4gMUQQuZP7H49Y3E+xZQJPCCFGF+VUO3UCzSrimnNBuw="),
    ("gq-n128-c320-r9", 2, 26.31,
     "iUdRQwIQEBADAQEEBgABAGdxLW4xMjgtYzMyMC1yOQCFNWjmXNKLUgAAAAAAAAAAQAAAADAAAAADAAAABAAAADMAAAAAAAAAcAAAANDgDj"
     "RM3BTTU+qwdgAAAAC5taJIAQABAAEA/////wBA/78AAEduBUygfKSrYJQZTP4ogFw8bEHiuwJtAHaSms1vb69WuPr6IAHLW8hVQ9VcR9OL"
     "AHrvfJf4sx4xYtNTY9bsTzm/QJFfmGHFFK4UuKvWOwkJPWhkO0O3A6YOsSpDbCOthA=="),
    ("gq-n128-c320-r9", 3, 30.13,
     "iUdRQwMUEBADAQEKFAABBGdxLW4xMjgtYzMyMC1yOQCFNWjmXNKLUgAAAAAAAAAAQAAAADAAAAADAAAABAAAAI8AAAAAAAAAgAEAAMrmEs"
     "dM3BTTU+qwdgAAAABv6MtuAQABAAEAAQAAgACAAIABAAEAAQABAP//AID//wEA//8BAAEAAIABAACAAABVVQEAAEABABddZmbHccdxHMc5"
     "jquqt20AgABAAIAAgAEAAIABAAEA5bCxPIqQMYqsb9iYtB8sVoLGHSHOcHdVAO+q9Kpo3oikPPP58RU+0E9kJMSytKy3TxZcr9MIbt3RHW"
     "KWAhU7greee7BEaDyEwd9znt3keTQ85JBRSvJAuJept9kRsIWqSsqhl6B27PhDEdMwSiLqpcxLSBSLLjaV+dWVPG07Lc/GNolKUctoM0Kv"
     "DVeeSi4cTChmJNWiEZHi6iujhjzlYGz/RADlgcdqlOtM3d3YffViDW1H5KA68tokYHafYQ3bAdTPgxPnekxsLwH2qm8qLcJuPFy5J68R35"
     "P6YjvVpbW/ZnYzrXtbwt0SjFan88/+lZ/VG3SXeQuDnIm06U83WrUuDTulMNNIiUrmyKPU14OHNwA+jF7C2I/jmOMHsvhX5XLmoscefHmA"
     "ZMH7"),]


@pytest.mark.parametrize("model,version,psnr,b64", FILES, ids=[f"{m}-v{v}-{i}" for i, (m, v, _, _) in enumerate(FILES)])
def test_files_of_earlier_releases_still_decode(model, version, psnr, b64):
    data = base64.b64decode(b64)
    h = bitstream.read_header(data)
    assert (h.model_id, h.version) == (model, version)
    assert model in zoo.model_names(), f"model {model} was removed: its files no longer decode"
    assert h.model_hash == zoo.model_hash(model), f"model {model}'s weights or prior changed under the same name"
    out = np.asarray(gqcodec.decompress(data))
    assert out.shape == source().shape
    # the decoder is deterministic per machine; across CPUs float rounding may move a few pixels
    assert psnr_rgb(source(), out) > psnr - 0.5
