from codedraft import create_app

app = create_app()
