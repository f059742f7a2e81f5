// Device profiles: complete attribute tables that agree with the headline fields, for every type.

import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import {
  ATTRIBUTE_COUNT, CU_DEVICE_ATTRIBUTE, getProfile, instanceInfo, PROFILE_TYPES, UnknownGpuTypeError,
} from '../../../gpu-runtime/emulator/src/profiles';

const A = CU_DEVICE_ATTRIBUTE;
const INIT_ATTRS_FILE = '/work/shared/facts/data/cudart13.0-init-device-attributes.txt';
/** Attributes real drivers report as -1 on discrete GPUs (GPU memory is no NUMA node). */
const NEGATIVE_BY_DESIGN = new Set<number>([A.NUMA_ID]);

/** The attributes cudart 13.0 queries at init (measured list; falls back to the copy of its ids below). */
function cudartInitAttributes(): number[] {
  try {
    return readFileSync(INIT_ATTRS_FILE, 'utf8').split('\n').filter(Boolean).map((l) => Number(l.split(' ')[0]));
  } catch {
    return [75, 76, 40, 16, 18, 19, 21, 77, 22, 23, 73, 74, 70, 71, 72, 45, 46, 24, 25, 26, 47, 48, 49, 52, 42, 43,
      27, 28, 29, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 31, 32, 33, 34, 50, 35, 41, 37, 38,
      108, 39, 30, 51, 8, 97, 81, 12, 82, 10, 11, 1, 2, 3, 4, 5, 6, 7, 9, 14, 78, 79, 80, 83, 84, 85, 86, 88, 89, 90,
      91, 95, 100, 101, 106, 109, 111, 99, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 125, 129, 130, 131, 133,
      134, 139, 140, 143];
  }
}

describe('profiles', () => {
  it('offers the types the pool advertises', () => {
    for (const t of ['T4', 'A100-40GB', 'A100-80GB', 'V100-16GB', 'L4', 'H100-80GB']) assert.ok(PROFILE_TYPES.includes(t), t);
    assert.equal(getProfile('T4').name, 'Tesla T4');
    assert.equal(getProfile('A100-40GB').name, 'NVIDIA A100-SXM4-40GB');
  });

  it('fills every CUdevice_attribute of cuda.h, with no gaps', () => {
    const values: number[] = Object.values(A);
    assert.equal(Math.max(...values) + 1, ATTRIBUTE_COUNT);
    for (let v = 1; v < ATTRIBUTE_COUNT; v++) assert.ok(values.includes(v), `attribute ${v} missing from the enum`);
  });

  for (const type of PROFILE_TYPES) {
    describe(type, () => {
      const p = getProfile(type);
      const at = (v: number) => p.attributes[v];

      it('answers every attribute cudart queries at init with a non-negative value', () => {
        const ids = cudartInitAttributes();
        assert.ok(ids.length > 100);
        for (const id of ids) {
          assert.ok(id < p.attributes.length, `attribute ${id} beyond the table`);
          if (!NEGATIVE_BY_DESIGN.has(id)) assert.ok(at(id) >= 0, `attribute ${id} = ${at(id)}`);
        }
        assert.equal(p.attributes.length, ATTRIBUTE_COUNT);
        assert.ok(p.attributes.every((x) => Number.isInteger(x) && x >= -1 && x <= 0x7fffffff), 'int32 values');
      });

      it('agrees with its headline fields', () => {
        assert.equal(at(A.COMPUTE_CAPABILITY_MAJOR), p.ccMajor);
        assert.equal(at(A.COMPUTE_CAPABILITY_MINOR), p.ccMinor);
        assert.ok(p.ccMajor >= 7 && p.ccMajor <= 9);
        assert.equal(at(A.PCI_BUS_ID), p.pciBus);
        assert.equal(at(A.PCI_DOMAIN_ID), p.pciDomain);
        assert.equal(at(A.PCI_DEVICE_ID), p.pciDevice);
        assert.equal(p.driverVersion, 13000);
        assert.equal(p.uuid.length, 16);
        assert.equal(p.type, type);
      });

      it('has consistent memory and SM limits', () => {
        assert.ok(p.totalMem > 15e9 && p.totalMem < 90e9, `totalMem ${p.totalMem}`);
        assert.ok(at(A.MULTIPROCESSOR_COUNT) >= 40);
        assert.equal(at(A.WARP_SIZE), 32);
        assert.ok(at(A.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN) >= at(A.MAX_SHARED_MEMORY_PER_BLOCK));
        assert.ok(at(A.MAX_SHARED_MEMORY_PER_MULTIPROCESSOR) >= at(A.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN));
        assert.ok(at(A.MAX_THREADS_PER_MULTIPROCESSOR) >= at(A.MAX_THREADS_PER_BLOCK));
        assert.ok(at(A.MAX_PERSISTING_L2_CACHE_SIZE) < at(A.L2_CACHE_SIZE));
        assert.equal(at(A.CLUSTER_LAUNCH), p.ccMajor >= 9 ? 1 : 0);
        assert.equal(at(A.MAX_PERSISTING_L2_CACHE_SIZE) > 0, p.ccMajor >= 8);
        assert.equal(at(A.GPU_PCI_DEVICE_ID) & 0xffff, 0x10de, 'NVIDIA vendor id');
      });
    });
  }

  it('gives each instance its own stable UUID and PCI location', () => {
    const seen = new Set<string>();
    for (const type of PROFILE_TYPES) {
      for (let i = 0; i < 10; i++) {
        const d = instanceInfo(type, i);
        const key = Buffer.from(d.uuid).toString('hex');
        assert.ok(!seen.has(key), `duplicate UUID for ${type}#${i}`);
        seen.add(key);
        assert.deepEqual(instanceInfo(type, i).uuid, d.uuid, 'deterministic');
        const sameType = Array.from({ length: i }, (_, j) => instanceInfo(type, j));
        assert.ok(sameType.every((o) => o.pciBus !== d.pciBus || o.pciDomain !== d.pciDomain), `${type}#${i} PCI clash`);
      }
    }
    assert.deepEqual(getProfile('L4'), instanceInfo('L4', 0));
  });

  it('hands out independent copies', () => {
    const a = getProfile('T4');
    a.attributes[A.MULTIPROCESSOR_COUNT] = 1;
    assert.equal(getProfile('T4').attributes[A.MULTIPROCESSOR_COUNT], 40);
  });

  it('rejects unknown types and bad indices', () => {
    assert.throws(() => getProfile('GTX-480'), UnknownGpuTypeError);
    assert.throws(() => getProfile('toString'), UnknownGpuTypeError);
    assert.throws(() => instanceInfo('T4', -1), RangeError);
  });
});
