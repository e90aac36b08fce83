"""Offline install of the mproc package: `pip install ./python` (or
`pip install --no-build-isolation --no-index ./python`), with only
setuptools (Debian: python3-setuptools, python3-dev, libcbor-dev,
libssl-dev). The extension mproc._core is built with the whole C core
compiled into it: the sources are those the layers' CMakeLists.txt list,
read from the source tree this directory sits in."""
import glob
import os
import re
import subprocess

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LAYERS = ['base', 'platform', 'arena', 'sync', 'shm', 'value', 'conn', 'queue', 'process',
          'pool', 'manager']


def layer_sources():
    srcs = []
    for layer in LAYERS:
        with open(os.path.join(ROOT, 'src', layer, 'CMakeLists.txt')) as f:
            text = f.read()
        for block in re.findall(r'target_sources\(mproc_obj PRIVATE(.*?)\)', text, re.S):
            for name in block.split():
                if name.endswith('.c'):
                    srcs.append(os.path.relpath(os.path.join(ROOT, 'src', layer, name), HERE))
    return srcs


def pkg_config(*args):
    try:
        out = subprocess.run(['pkg-config'] + list(args) + ['libcbor', 'libcrypto'],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return out.split()


libs = [f[2:] for f in pkg_config('--libs') if f.startswith('-l')] or ['cbor', 'crypto']
incs = [f[2:] for f in pkg_config('--cflags') if f.startswith('-I')]

core = Extension(
    'mproc._core',
    sources=sorted(glob.glob('src/*.c')) + layer_sources(),
    include_dirs=[os.path.join(ROOT, 'include'), os.path.join(ROOT, 'src')] + incs,
    define_macros=[('_GNU_SOURCE', None)],
    extra_compile_args=['-std=c11', '-fvisibility=hidden', '-Wno-unused-parameter'],
    libraries=libs + ['pthread', 'm'],
)

setup(
    name='mproc',
    version='0.1.0',
    description="Python's multiprocessing on the mproc C core",
    packages=['mproc', 'mproc.futures'],
    ext_modules=[core],
    python_requires='>=3.11',
)
