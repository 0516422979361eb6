

async def test_a_pdf_locked_with_a_password_fails_naming_the_file(bench: DocumentBench) -> None:
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(build_pdf(["secret page"]))))
    writer.encrypt(user_password="pw", owner_password="owner", algorithm="AES-128")
    locked = io.BytesIO()
    writer.write(locked)
    saved = await bench.upload(locked.getvalue(), "locked.pdf")
    out = await bench.run([parse()], {"doc": {"file_id": str(saved.id)}})
    step = out.steps["parse"]
    assert step.status is StepStatus.error
    assert step.error is not None
    assert "'locked.pdf'" in step.error and "encrypted with a password" in step.error
