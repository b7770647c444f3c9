// Package modinfotest makes stand-in kernel modules for tests of code that
// reads modules (package modinfo and its users).
package modinfotest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"strings"
)

// Module returns a minimal ELF64 relocatable object whose only content is a
// .modinfo section holding the given key=value fields, like a kernel
// module's.
func Module(fields ...string) []byte {
	modinfo := []byte(strings.Join(fields, "\x00") + "\x00")
	shstrtab := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehdrSize, shdrSize = 64, 64
	modinfoOff := uint64(ehdrSize)
	shstrOff := modinfoOff + uint64(len(modinfo))
	shOff := (shstrOff + uint64(len(shstrtab)) + 7) &^ 7

	var b bytes.Buffer
	var ident [elf.EI_NIDENT]byte
	copy(ident[:], elf.ELFMAG)
	ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	hdr := elf.Header64{
		Ident:     ident,
		Type:      uint16(elf.ET_REL),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Shoff:     shOff,
		Ehsize:    ehdrSize,
		Shentsize: shdrSize,
		Shnum:     3,
		Shstrndx:  2,
	}
	// Writing fixed-size values to a bytes.Buffer cannot fail.
	_ = binary.Write(&b, binary.LittleEndian, hdr)
	b.Write(modinfo)
	b.Write(shstrtab)
	b.Write(make([]byte, int(shOff)-b.Len()))
	for _, sh := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: modinfoOff, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: shstrOff, Size: uint64(len(shstrtab)), Addralign: 1},
	} {
		_ = binary.Write(&b, binary.LittleEndian, sh)
	}
	return b.Bytes()
}
